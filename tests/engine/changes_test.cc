// The change diff against a model: random operations on a copy of a state,
// then DiffStates(before, after) over only the pages whose bytes differ must
// equal the difference of the two std::maps — with small values (the
// leaf-candidate path) and with overflow values (the full comparison). And
// the change log records exactly the writes that landed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "keepstate/engine/changes.h"
#include "keepstate/engine/store.h"

using namespace keepstate;
using namespace keepstate::engine;

namespace {

using Model = std::map<std::string, std::string>;
using Diff = std::map<std::string, std::optional<std::string>>;

std::unique_ptr<Store> CopyOf(const Store& store) {
  const auto bytes = store.arena().bytes();
  Result<Arena> arena = Arena::FromImage({bytes.begin(), bytes.end()}, store.arena().page_size());
  REQUIRE(arena.ok());
  Result<std::unique_ptr<Store>> copy = Store::FromArena(std::move(*arena), true);
  REQUIRE(copy.ok());
  return std::move(*copy);
}

struct Workload {
  std::mt19937_64 rng;
  bool large_values;
  std::uint64_t Below(std::uint64_t n) { return rng() % n; }
  std::string Key() { return "key" + std::to_string(Below(3000)); }
  std::string Value() {
    std::size_t len = Below(40);
    if (large_values && Below(10) == 0) len = 3000 + Below(9000);
    std::string v(len, '\0');
    for (char& c : v) c = static_cast<char>('a' + Below(26));
    return v;
  }
  // n random puts and deletes on both the store and the model.
  void Run(Store& store, Model& model, int n) {
    for (int i = 0; i < n; ++i) {
      const std::string k = Key();
      if (Below(3) == 0) {
        REQUIRE(store.Delete(k).ok());
        model.erase(k);
      } else {
        const std::string v = Value();
        REQUIRE(store.Put(k, v).ok());
        model[k] = v;
      }
    }
  }
};

Diff ModelDiff(const Model& before, const Model& after) {
  Diff d;
  for (const auto& [k, v] : before) {
    auto it = after.find(k);
    if (it == after.end()) d[k] = std::nullopt;
    else if (it->second != v) d[k] = it->second;
  }
  for (const auto& [k, v] : after) {
    if (!before.count(k)) d[k] = v;
  }
  return d;
}

Diff StoreDiff(const Store& before, const Store& after, std::span<const PageId> pages) {
  Diff d;
  std::string last;
  DiffStates(before, after, pages, [&](std::string_view k, std::optional<std::string_view> v) {
    REQUIRE((d.empty() || CompareKeys(last, k) < 0));  // key order, each key once
    last = std::string(k);
    d[last] = v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
  });
  return d;
}

}  // namespace

TEST_CASE("DiffStates over the differing pages equals the model's difference") {
  const bool large = GENERATE(false, true);
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    INFO("seed " << seed << (large ? " (overflow values)" : ""));
    Workload w{std::mt19937_64(seed), large};
    Result<std::unique_ptr<Store>> created = Store::Create();
    REQUIRE(created.ok());
    Store& base = **created;
    Model before;
    w.Run(base, before, 4000);
    std::unique_ptr<Store> after = CopyOf(base);
    Model now = before;
    // From one write (a few pages change) to many (splits, merges, frees).
    const int n = seed <= 4 ? static_cast<int>(seed) : static_cast<int>(w.Below(3000));
    w.Run(*after, now, n);
    REQUIRE(after->tree().Check().ok());
    const std::vector<PageId> pages = DifferingPages(base.arena(), after->arena());
    CHECK(StoreDiff(base, *after, pages) == ModelDiff(before, now));
    // The other direction (a catch-up can also go "back": a delete becomes an insert).
    CHECK(StoreDiff(*after, base, pages) == ModelDiff(now, before));
  }
}

TEST_CASE("DiffStates of identical states is empty, and of an emptied tree lists every key") {
  Result<std::unique_ptr<Store>> created = Store::Create();
  REQUIRE(created.ok());
  Store& base = **created;
  for (int i = 0; i < 500; ++i) REQUIRE(base.Put("k" + std::to_string(i), std::string(30, 'x')).ok());
  std::unique_ptr<Store> same = CopyOf(base);
  CHECK(DifferingPages(base.arena(), same->arena()).empty());
  CHECK(StoreDiff(base, *same, {}).empty());
  std::unique_ptr<Store> empty = CopyOf(base);
  for (int i = 0; i < 500; ++i) REQUIRE(*empty->Delete("k" + std::to_string(i)));
  const Diff d = StoreDiff(base, *empty, DifferingPages(base.arena(), empty->arena()));
  REQUIRE(d.size() == 500);
  for (const auto& [k, v] : d) CHECK(!v.has_value());
}

TEST_CASE("the change log records exactly the writes that landed, only while enabled") {
  Result<std::unique_ptr<Store>> created = Store::Create();
  REQUIRE(created.ok());
  Store& store = **created;
  auto recorded = [&] {
    std::vector<std::string> keys;
    store.changes().ForEach([&](std::string_view k) { keys.emplace_back(k); });
    store.changes().Clear();
    return keys;
  };
  REQUIRE(store.Put("off", "1").ok());
  CHECK(recorded().empty());
  store.changes().Watch({KeyRange{"", "", false}});
  REQUIRE(store.Put("a", "1").ok());
  REQUIRE(*store.Delete("a"));
  REQUIRE(!*store.Delete("never"));          // nothing deleted: not a change
  REQUIRE(!store.Put("", "x").ok());         // refused: not a change
  {
    Result<Txn> txn = store.BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(txn->Put("b", "2").ok());
    REQUIRE(txn->Put("c", "3").ok());
    REQUIRE(txn->Delete("absent").ok());
    REQUIRE(txn->Commit().ok());
  }
  {
    Result<Txn> txn = store.BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(txn->Put("aborted", "x").ok());
    txn->Abort();
  }
  CHECK(recorded() == std::vector<std::string>{"a", "a", "b", "c"});
  // Only keys in a watched range are recorded.
  store.changes().Watch({KeyRange{"user/", "user0", true}, KeyRange{"z", "", false}});
  for (const char* k : {"user/1", "user0", "users", "a", "zz", "z"}) REQUIRE(store.Put(k, "v").ok());
  CHECK(recorded() == std::vector<std::string>{"user/1", "zz", "z"});
  store.changes().Watch({});
  REQUIRE(store.Put("d", "4").ok());
  CHECK(recorded().empty());
}

TEST_CASE("InPlaceDiff: the watched keys that a catch-up in place changes equal the model's difference") {
  const bool large = GENERATE(false, true);
  const bool narrow = GENERATE(false, true);
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed << (large ? " (overflow values)" : "") << (narrow ? " (one range)" : ""));
    Workload w{std::mt19937_64(seed * 7), large};
    Result<std::unique_ptr<Store>> created = Store::Create();
    REQUIRE(created.ok());
    Store& base = **created;
    Model before;
    w.Run(base, before, 3000);
    base.arena().ClearAllDirty();
    std::unique_ptr<Store> after = CopyOf(base);
    Model now = before;
    w.Run(*after, now, seed <= 3 ? static_cast<int>(seed) : static_cast<int>(w.Below(2500)));
    // What a catch-up stages: the pages whose bytes differ, below the new count.
    std::vector<PageId> pages;
    for (PageId id : DifferingPages(base.arena(), after->arena())) {
      if (id < after->arena().page_count()) pages.push_back(id);
    }
    std::vector<std::uint8_t> bytes;
    for (PageId id : pages) bytes.insert(bytes.end(), after->arena().Read(id), after->arena().Read(id) + after->arena().page_size());
    ChangeLog watching;
    KeyRange range = narrow ? KeyRange{"key1", "key2", true} : KeyRange{"", "", false};
    watching.Watch({range});
    const InPlaceDiff diff = InPlaceDiff::Prepare(base, watching, after->arena().page_count(), pages, bytes.data());
    REQUIRE(base.arena().ApplyPages(after->arena().page_count(), pages, bytes.data()).ok());
    REQUIRE(base.tree().Check().ok());
    Diff got;
    diff.Finish(base, watching, [&](std::string_view k, std::optional<std::string_view> v) {
      got[std::string(k)] = v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
    });
    Diff want;
    for (auto& [k, v] : ModelDiff(before, now)) {
      if (range.Contains(k)) want[k] = v;
    }
    CHECK(got == want);
  }
}

TEST_CASE("the change log's watched ranges (kept as their union) match exactly the keys some range holds") {
  std::mt19937_64 rng(11);
  auto text = [&](std::size_t max) {
    std::string s(rng() % (max + 1), 'a');
    for (char& c : s) c = static_cast<char>('a' + rng() % 6);
    return s;
  };
  for (int round = 0; round < 300; ++round) {
    std::vector<KeyRange> ranges(rng() % 12);
    for (KeyRange& r : ranges) {
      r.start = text(3);
      r.has_end = rng() % 4 != 0;  // some unbounded
      if (r.has_end) r.end = rng() % 3 == 0 ? r.start : text(3);  // some empty, some reversed
    }
    ChangeLog log;
    log.Watch(ranges);
    CHECK(log.enabled() == std::any_of(ranges.begin(), ranges.end(), [](const KeyRange& r) {
      return !r.has_end || r.start < r.end;
    }));
    for (int probe = 0; probe < 200; ++probe) {
      const std::string key = text(4);
      const bool expected = std::any_of(ranges.begin(), ranges.end(), [&](const KeyRange& r) { return r.Contains(key); });
      INFO("round " << round << ", key '" << key << "'");
      REQUIRE(log.Watched(key) == expected);
    }
  }
}
