// Model-based test: the store against std::map over long random sequences of
// put, delete, get, scan and transactions (committed or aborted), with the
// tree's full invariant check at intervals. The seed is printed on failure.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "keepstate/engine/store.h"

using namespace keepstate;
using namespace keepstate::engine;

namespace {

using Model = std::map<std::string, std::string>;

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(std::uint64_t seed) : rng(seed) {}
  std::uint64_t Below(std::uint64_t n) { return rng() % n; }
  std::string Key() {
    // A small key space so that replaces and deletes hit; a few long keys.
    const std::uint64_t id = Below(4000);
    std::string k = "k" + std::to_string(id);
    if (id % 97 == 0) k += std::string(200 + id % 800, static_cast<char>('a' + id % 26));
    return k;
  }
  std::string Value() {
    const std::uint64_t r = Below(1000);
    std::size_t len = r < 700 ? Below(16) : r < 990 ? Below(600) : 2000 + Below(40000);
    std::string v(len, '\0');
    const char base = static_cast<char>(Below(256));
    for (std::size_t i = 0; i < len; ++i) v[i] = static_cast<char>(base + i);
    return v;
  }
};

std::vector<std::pair<std::string, std::string>> ScanStore(
    const std::function<void(const ScanOptions&,
                             const std::function<bool(std::string_view, std::string_view)>&)>& scan,
    const ScanOptions& o) {
  std::vector<std::pair<std::string, std::string>> out;
  scan(o, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  return out;
}

std::vector<std::pair<std::string, std::string>> ScanModel(const Model& m, const ScanOptions& o) {
  std::vector<std::pair<std::string, std::string>> out;
  auto lo = m.lower_bound(std::string(o.start));
  auto hi = o.has_end ? m.lower_bound(std::string(o.end)) : m.end();
  if (!o.has_end || std::string(o.start) < std::string(o.end)) {
    for (auto it = lo; it != hi; ++it) out.emplace_back(it->first, it->second);
  }
  if (o.reverse) std::reverse(out.begin(), out.end());
  if (o.limit && out.size() > o.limit) out.resize(o.limit);
  return out;
}

void RunModel(std::uint64_t seed, int ops) {
  INFO("seed " << seed);
  Gen g(seed);
  auto store = Store::Create().value();
  Model model;
  std::string v;
  for (int step = 0; step < ops; ++step) {
    INFO("step " << step);
    const std::uint64_t op = g.Below(100);
    if (op < 45) {
      const std::string k = g.Key(), val = g.Value();
      REQUIRE(store->Put(k, val).ok());
      model[k] = val;
    } else if (op < 65) {
      const std::string k = g.Key();
      const bool existed = store->Delete(k).value();
      REQUIRE(existed == (model.erase(k) == 1));
    } else if (op < 85) {
      const std::string k = g.Key();
      Status s = store->Get(k, &v);
      auto it = model.find(k);
      if (it == model.end()) {
        REQUIRE(s.IsNotFound());
      } else {
        REQUIRE(s.ok());
        REQUIRE(v == it->second);
      }
    } else if (op < 93) {
      ScanOptions o;
      std::string a = g.Key(), b = g.Key();
      if (b < a) std::swap(a, b);
      o.start = a;
      o.end = b;
      o.has_end = g.Below(4) != 0;
      o.reverse = g.Below(2) == 0;
      o.limit = g.Below(3) == 0 ? g.Below(50) : 0;
      auto scan = [&](const ScanOptions& so, const auto& fn) { store->Scan(so, fn); };
      REQUIRE(ScanStore(scan, o) == ScanModel(model, o));
    } else {
      // A transaction: reads its writes against a copy of the model, then
      // commits or aborts.
      const bool commit = g.Below(3) != 0;
      static std::vector<std::uint8_t> before;  // reused: its capacity survives
      if (!commit) before.assign(store->arena().bytes().begin(), store->arena().bytes().end());
      Model shadow = model;
      auto txn = store->BeginWrite().value();
      const int n = 1 + static_cast<int>(g.Below(g.Below(10) == 0 ? 400 : 12));
      for (int i = 0; i < n; ++i) {
        const std::string k = g.Key();
        const std::uint64_t t = g.Below(10);
        if (t < 6) {
          const std::string val = g.Value();
          REQUIRE(txn.Put(k, val).ok());
          shadow[k] = val;
        } else if (t < 8) {
          REQUIRE(txn.Delete(k).value() == (shadow.erase(k) == 1));
        } else {
          Status s = txn.Get(k, &v);
          auto it = shadow.find(k);
          REQUIRE(s.ok() == (it != shadow.end()));
          if (s.ok()) REQUIRE(v == it->second);
        }
      }
      ScanOptions o;
      o.reverse = g.Below(2) == 0;
      o.limit = 30;
      auto tscan = [&](const ScanOptions& so, const auto& fn) { txn.Scan(so, fn); };
      REQUIRE(ScanStore(tscan, o) == ScanModel(shadow, o));
      if (commit) {
        REQUIRE(txn.Commit().ok());
        model = std::move(shadow);
      } else {
        txn.Abort();
        REQUIRE(store->arena().bytes().size() == before.size());
        REQUIRE(std::memcmp(store->arena().bytes().data(), before.data(), before.size()) == 0);
      }
    }
    if (step % 5000 == 4999) {
      Status check = store->tree().Check();
      INFO(check.ToString());
      REQUIRE(check.ok());
      REQUIRE(store->Count() == model.size());
      auto scan = [&](const ScanOptions& so, const auto& fn) { store->Scan(so, fn); };
      REQUIRE(ScanStore(scan, {}) == ScanModel(model, {}));
    }
  }
  // Delete everything: no page may be left behind.
  for (const auto& [k, val] : model) REQUIRE(store->Delete(k).value());
  REQUIRE(store->Count() == 0);
  REQUIRE(store->arena().free_count() == store->arena().page_count() - 1);
  REQUIRE(store->tree().Check().ok());
}

}  // namespace

// Four seeds of 60,000 operations each (240,000 in all), one test case per
// seed so that ctest runs them in parallel.
TEST_CASE("model: seed 1, 60,000 random operations against std::map", "[engine][model]") {
  RunModel(1, 60000);
}
TEST_CASE("model: seed 2, 60,000 random operations against std::map", "[engine][model]") {
  RunModel(2, 60000);
}
TEST_CASE("model: seed 0xC0FFEE, 60,000 random operations against std::map", "[engine][model]") {
  RunModel(0xC0FFEE, 60000);
}
TEST_CASE("model: seed 20261127, 60,000 random operations against std::map", "[engine][model]") {
  RunModel(20261127, 60000);
}
