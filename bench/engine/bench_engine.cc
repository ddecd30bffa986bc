// bench_engine: the store against std::map doing the same work, in one run.
//
//   point put and get over 1M keys (16-byte keys, 8-byte values);
//   transfer: a transaction that reads two account balances and writes both,
//             over 1,000,000 accounts;
//   a page-size sweep (4 to 64 KiB) of get and transfer speed and of dirty
//   bytes per transfer, which is how the default page size was chosen.
// Keys are drawn uniformly at random, the worst case for caches. The
// contenders take turns in 5 rounds and every figure is a median over the
// rounds (ratios: the median of each round's ratio), so that drift in the
// machine's memory latency cannot favour whoever ran in a quiet moment.
// Targets:
// transfer >= 3x std::map, >= 1 M txns/s as wasm under Node, get >= 2x.
//
// --breakdown prints instead where the time of one transfer goes (each part
// timed cold and cached; see Breakdown below).
//
// Usage: bench_engine [--json out.json] [--quick] [--breakdown]
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "keepstate/engine/store.h"

using keepstate::bench::Now;
using keepstate::bench::Report;
using keepstate::bench::Verdict;
using namespace keepstate::engine;

namespace {

constexpr std::size_t kKeySize = 16;
// Rounds of the main comparison; every figure is a median over them.
constexpr std::size_t kRounds = 5;

// All keys "account:%08u", flat, so that building them costs nothing in the
// timed loops (both contenders read them from the same array).
struct Keys {
  std::vector<char> bytes;
  std::string_view operator[](std::size_t i) const { return {bytes.data() + i * kKeySize, kKeySize}; }
};

Keys MakeKeys(std::size_t n) {
  Keys k;
  k.bytes.resize(n * kKeySize + 1);
  for (std::size_t i = 0; i < n; ++i) {
    // i < 10^8 (n is at most a few million): exactly 8 digits, 16 bytes.
    std::snprintf(k.bytes.data() + i * kKeySize, kKeySize + 1, "account:%08u",
                  static_cast<unsigned>(i % 100000000));
  }
  return k;
}

std::string_view Encode(std::int64_t v, char* buf) {
  std::memcpy(buf, &v, 8);
  return {buf, 8};
}
std::int64_t Decode(std::string_view s) {
  std::int64_t v;
  std::memcpy(&v, s.data(), 8);
  return v;
}

std::vector<std::uint32_t> RandomIndexes(std::size_t count, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> out(count);
  for (auto& x : out) x = static_cast<std::uint32_t>(rng() % n);
  // A transfer reads pairs (order[2i], order[2i+1]): never an account to itself.
  for (std::size_t i = 0; i + 1 < count; i += 2) {
    if (out[i] == out[i + 1]) out[i + 1] = static_cast<std::uint32_t>((out[i + 1] + 1) % n);
  }
  return out;
}

// One transfer as its own transaction, both balances read by one GetMany
// (their cache misses overlap); hints, if given, say where they are.
void TransferWithGetMany(Store& store, std::string_view a, std::string_view b, std::int64_t amount,
                         const LeafHint* hints = nullptr) {
  char buf[8];
  std::string values[2];
  keepstate::Status statuses[2];
  const std::string_view ab[2] = {a, b};
  auto txn = store.BeginWrite();
  txn->GetMany(ab, 2, values, statuses, hints);
  if (!statuses[0].ok() || !statuses[1].ok()) std::abort();
  if (!txn->Put(a, Encode(Decode(values[0]) - amount, buf)).ok()) std::abort();
  if (!txn->Put(b, Encode(Decode(values[1]) + amount, buf)).ok()) std::abort();
  if (!txn->Commit().ok()) std::abort();
}

// One transfer as its own transaction, one Get per balance.
void PlainTransfer(Store& store, std::string_view a, std::string_view b, std::int64_t amount) {
  char buf[8];
  auto txn = store.BeginWrite();
  std::string va, vb;
  if (!txn->Get(a, &va).ok() || !txn->Get(b, &vb).ok()) std::abort();
  if (!txn->Put(a, Encode(Decode(va) - amount, buf)).ok()) std::abort();
  if (!txn->Put(b, Encode(Decode(vb) + amount, buf)).ok()) std::abort();
  if (!txn->Commit().ok()) std::abort();
}

// Transfers per second, each transfer(store, a, b, amount) over the pairs of
// `order`.
template <typename Transfer>
double RunTransfers(Store& store, const Keys& keys, const std::vector<std::uint32_t>& order,
                    std::size_t transfers, Transfer transfer) {
  const double t0 = Now();
  for (std::size_t i = 0; i < transfers; ++i) {
    transfer(store, keys[order[2 * i]], keys[order[2 * i + 1]], 1 + static_cast<std::int64_t>(i % 7));
  }
  return transfers / (Now() - t0);
}

// Transfers run as independent transactions in groups of kGroup; before each
// group, Store::Locate finds all of its accounts at once, their cache misses
// overlapping, and each transaction then reads its two balances through the
// hints instead of descending the tree. Each transfer is still its own
// atomic Txn with a commit.
double RunLocatedTransfers(Store& store, const Keys& keys, const std::vector<std::uint32_t>& order,
                           std::size_t transfers) {
  constexpr std::size_t kGroup = 8;
  std::string_view group_keys[2 * kGroup];
  LeafHint hints[2 * kGroup];
  const double t0 = Now();
  for (std::size_t g = 0; g < transfers; g += kGroup) {
    const std::size_t m = std::min(kGroup, transfers - g);
    for (std::size_t j = 0; j < 2 * m; ++j) group_keys[j] = keys[order[2 * g + j]];
    store.Locate(group_keys, 2 * m, hints);
    for (std::size_t i = g; i < g + m; ++i) {
      TransferWithGetMany(store, keys[order[2 * i]], keys[order[2 * i + 1]],
                          1 + static_cast<std::int64_t>(i % 7), &hints[2 * (i - g)]);
    }
  }
  return transfers / (Now() - t0);
}

// n accounts of balance 1000, put in a scrambled order (a growing tree).
// Returns puts per second.
double LoadStore(Store& store, const Keys& keys, std::size_t n) {
  char buf[8];
  const double t0 = Now();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = static_cast<std::size_t>((i * std::uint64_t{2654435761u}) % n);  // a permutation: n is coprime with the prime
    if (!store.Put(keys[k], Encode(1000, buf)).ok()) std::abort();
  }
  return n / (Now() - t0);
}

double StoreGets(const Store& store, const Keys& keys, const std::vector<std::uint32_t>& order,
                 std::size_t count) {
  std::string v;
  std::int64_t sum = 0;
  const double t0 = Now();
  for (std::size_t i = 0; i < count; ++i) {
    if (!store.Get(keys[order[i]], &v).ok()) std::abort();
    sum += Decode(v);
  }
  const double s = Now() - t0;
  if (sum == 42) std::abort();  // keeps the reads from being optimised away
  return count / s;
}

// The invariant: transfers move money, never create it.
void CheckTotal(const Store& store, std::size_t n) {
  std::int64_t total = 0;
  store.Scan({}, [&](std::string_view, std::string_view val) {
    total += Decode(val);
    return true;
  });
  if (total != static_cast<std::int64_t>(n) * 1000) std::abort();
}

// Bytes one transfer dirties (what a commit must copy, hash and store).
double DirtyBytesPerTransfer(Store& store, const Keys& keys, const std::vector<std::uint32_t>& order) {
  store.arena().ClearAllDirty();
  PlainTransfer(store, keys[order[0]], keys[order[1]], 0);
  return static_cast<double>(store.arena().dirty().Count()) * store.arena().page_size();
}

using Map = std::map<std::string, std::string>;

double LoadMap(Map& m, const Keys& keys, std::size_t n) {
  char buf[8];
  const double t0 = Now();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = static_cast<std::size_t>((i * std::uint64_t{2654435761u}) % n);
    m.insert_or_assign(std::string(keys[k]), std::string(Encode(1000, buf)));
  }
  return n / (Now() - t0);
}

double MapGets(const Map& m, const Keys& keys, const std::vector<std::uint32_t>& order, std::size_t count) {
  std::int64_t sum = 0;
  const double t0 = Now();
  for (std::size_t i = 0; i < count; ++i) sum += Decode(m.find(std::string(keys[order[i]]))->second);
  const double s = Now() - t0;
  if (sum == 42) std::abort();
  return count / s;
}

double MapTransfers(Map& m, const Keys& keys, const std::vector<std::uint32_t>& order, std::size_t transfers) {
  char buf[8];
  const double t0 = Now();
  for (std::size_t i = 0; i < transfers; ++i) {
    // std::map at its best: two lookups, balances updated in place.
    auto ia = m.find(std::string(keys[order[2 * i]]));
    auto ib = m.find(std::string(keys[order[2 * i + 1]]));
    const std::int64_t amount = 1 + static_cast<std::int64_t>(i % 7);
    ia->second.assign(Encode(Decode(ia->second) - amount, buf));
    ib->second.assign(Encode(Decode(ib->second) + amount, buf));
  }
  return transfers / (Now() - t0);
}

void CheckTotal(const Map& m, std::size_t n) {
  std::int64_t total = 0;
  for (auto& [k, v] : m) total += Decode(v);
  if (total != static_cast<std::int64_t>(n) * 1000) std::abort();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// A figure measured once per round: its median, and the median over rounds
// of its ratio to a baseline measured in the same round.
struct Series {
  std::vector<double> values;
  double median() const { return Median(values); }
  double ratio_to(const Series& base) const {
    std::vector<double> r;
    for (std::size_t i = 0; i < values.size(); ++i) r.push_back(values[i] / base.values[i]);
    return Median(r);
  }
};

// The physical limit behind every random lookup: one dependent cache miss,
// measured by chasing a random cycle of pointers through 64 MiB.
double DependentMissNs() {
  const std::size_t n = (64u << 20) / sizeof(std::uint32_t);
  std::vector<std::uint32_t> order(n), next(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  std::mt19937_64 rng(7);
  for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);
  for (std::size_t i = 0; i < n; ++i) next[order[i]] = order[(i + 1) % n];
  const std::size_t steps = 4000000;
  std::uint32_t p = order[0];
  const double t0 = Now();
  for (std::size_t i = 0; i < steps; ++i) p = next[p];
  const double s = Now() - t0;
  if (p == 0xFFFFFFFFu) std::abort();  // keeps the chase from being optimised away
  return s / steps * 1e9;
}


// --breakdown: where the time of one transfer goes. Each step is timed over
// uniformly random accounts of the 1M-key tree ("cold": its cache misses
// included) and over 256 accounts that stay in the cache ("hot": CPU work
// only); cold minus hot is what the misses cost.
void Breakdown(const Keys& keys, std::size_t n, Report& report) {
  auto store = Store::Create({}).value();
  char buf[8];
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = static_cast<std::size_t>((i * std::uint64_t{2654435761u}) % n);
    if (!store->Put(keys[k], Encode(1000, buf)).ok()) std::abort();
  }
  const std::size_t reps = n / 2;
  const auto cold = RandomIndexes(2 * reps, n, 43);
  std::vector<std::uint32_t> hot(2 * reps);
  {
    const auto pool = RandomIndexes(256, n, 44);
    const auto pick = RandomIndexes(2 * reps, pool.size(), 45);
    for (std::size_t i = 0; i < hot.size(); ++i) hot[i] = pool[pick[i]];
    for (std::size_t i = 0; i + 1 < hot.size(); i += 2) {
      if (hot[i] == hot[i + 1]) hot[i + 1] = pool[(pick[i + 1] + 1) % pool.size()];
    }
  }
  auto time_ns = [&](const std::vector<std::uint32_t>& order, auto&& step) {
    for (std::size_t i = 0; i < 1000; ++i) step(keys[order[2 * i]], keys[order[2 * i + 1]]);  // warm up
    const double t0 = Now();
    for (std::size_t i = 0; i < reps; ++i) step(keys[order[2 * i]], keys[order[2 * i + 1]]);
    return (Now() - t0) / reps * 1e9;
  };
  std::string va, vb;
  std::int64_t sink = 0;
  auto txn_get_many = [&](Txn& txn, std::string_view a, std::string_view b) {
    const std::string_view ab[2] = {a, b};
    std::string v[2];
    keepstate::Status st[2];
    txn.GetMany(ab, 2, v, st);
    va = std::move(v[0]);
    vb = std::move(v[1]);
  };
  struct Step {
    const char* name;
    std::function<void(std::string_view, std::string_view)> fn;
  };
  const Step steps[] = {
      {"Store::Get", [&](std::string_view a, std::string_view) {
         if (!store->Get(a, &va).ok()) std::abort();
         sink += va[0];
       }},
      {"Store::GetMany of 2", [&](std::string_view a, std::string_view b) {
         const std::string_view ab[2] = {a, b};
         std::string v[2];
         keepstate::Status st[2];
         store->GetMany(ab, 2, v, st);
         sink += v[0][0] + v[1][0];
       }},
      {"Store::Put same size (descends, dirties)", [&](std::string_view a, std::string_view) {
         if (!store->Put(a, Encode(1000, buf)).ok()) std::abort();
       }},
      {"Txn begin + commit, empty", [&](std::string_view, std::string_view) {
         auto txn = store->BeginWrite();
         if (!txn->Commit().ok()) std::abort();
       }},
      {"Txn: 2 Get, abort", [&](std::string_view a, std::string_view b) {
         auto txn = store->BeginWrite();
         if (!txn->Get(a, &va).ok() || !txn->Get(b, &vb).ok()) std::abort();
         txn->Abort();
       }},
      {"Txn: GetMany of 2, abort", [&](std::string_view a, std::string_view b) {
         auto txn = store->BeginWrite();
         txn_get_many(*txn, a, b);
         txn->Abort();
       }},
      {"Txn: GetMany of 2, 2 Put, abort", [&](std::string_view a, std::string_view b) {
         auto txn = store->BeginWrite();
         txn_get_many(*txn, a, b);
         if (!txn->Put(a, Encode(Decode(va) - 1, buf)).ok()) std::abort();
         if (!txn->Put(b, Encode(Decode(vb) + 1, buf)).ok()) std::abort();
         txn->Abort();
       }},
      {"transfer: Txn GetMany of 2, 2 Put, commit", [&](std::string_view a, std::string_view b) {
         TransferWithGetMany(*store, a, b, 1);
       }},
      {"transfer: Txn 2 Get, 2 Put, commit", [&](std::string_view a, std::string_view b) {
         auto txn = store->BeginWrite();
         if (!txn->Get(a, &va).ok() || !txn->Get(b, &vb).ok()) std::abort();
         if (!txn->Put(a, Encode(Decode(va) - 1, buf)).ok()) std::abort();
         if (!txn->Put(b, Encode(Decode(vb) + 1, buf)).ok()) std::abort();
         if (!txn->Commit().ok()) std::abort();
       }},
  };
  for (const Step& s : steps) {
    const double c = time_ns(cold, s.fn);
    const double h = time_ns(hot, s.fn);
    report.Add(std::string(s.name) + ": cold", c, "ns");
    report.Add(std::string(s.name) + ": hot", h, "ns", "misses cost " + std::to_string(static_cast<int>(c - h)) + " ns");
  }
  if (sink == 42) std::abort();
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = keepstate::bench::HasFlag(argc, argv, "--quick");
  const std::size_t n = quick ? 100000 : 1000000;
  const std::size_t transfers = quick ? 200000 : 2000000;
  const Keys keys = MakeKeys(n);
  const auto order = RandomIndexes(2 * transfers, n, 42);
  if (keepstate::bench::HasFlag(argc, argv, "--breakdown")) {
    Report report("bench/engine --breakdown: one transfer's parts, ns each, " + std::to_string(n) + " keys");
    report.Add("limit: one dependent cache miss over 64 MiB", DependentMissNs(), "ns");
    Breakdown(keys, n, report);
    report.Print();
    return report.WriteJson(keepstate::bench::JsonPath(argc, argv)) ? 0 : 1;
  }

  Report report("bench/engine: store vs std::map, " + std::to_string(n) + " keys, uniform random, median of " +
                std::to_string(kRounds) + " rounds");
  Map map;
  const double map_put = LoadMap(map, keys, n);
  auto store = Store::Create({kDefaultPageSize}).value();
  const double store_put = LoadStore(*store, keys, n);
  // Rounds: every contender runs its part back to back in each round, so
  // that drift in the machine's memory latency (large on a shared VM) hits
  // all of them alike; a ratio is the median of the rounds' ratios.
  const std::size_t per_round = transfers / kRounds;
  Series map_get, get, map_transfer, plain, batched, grouped;
  for (std::size_t r = 0; r < kRounds; ++r) {
    map_get.values.push_back(MapGets(map, keys, order, 2 * per_round));
    get.values.push_back(StoreGets(*store, keys, order, 2 * per_round));
    map_transfer.values.push_back(MapTransfers(map, keys, order, per_round));
    plain.values.push_back(RunTransfers(*store, keys, order, per_round, PlainTransfer));
    batched.values.push_back(RunTransfers(*store, keys, order, per_round,
                                               [](Store& st, std::string_view a, std::string_view b,
                                                  std::int64_t amount) { TransferWithGetMany(st, a, b, amount); }));
    grouped.values.push_back(RunLocatedTransfers(*store, keys, order, per_round));
  }
  CheckTotal(map, n);
  CheckTotal(*store, n);

  report.Add("limit: one dependent cache miss over 64 MiB", DependentMissNs(), "ns",
             "pointer chase; a random lookup cannot beat its chain of these");
  report.Add("std::map put (insert, random order)", map_put / 1e6, "M ops/s");
  report.Add("keepstate put (insert, random order)", store_put / 1e6, "M ops/s",
             "ratio " + std::to_string(store_put / map_put).substr(0, 4) + "x (no target)");
  report.Add("std::map get", map_get.median() / 1e6, "M ops/s");
  report.Add("keepstate get", get.median() / 1e6, "M ops/s", Verdict(get.ratio_to(map_get), 2.0));
  report.Add("std::map transfer (2 finds, in place)", map_transfer.median() / 1e6, "M txn/s");
  report.Add("keepstate transfer (Txn: 2 get, 2 put, commit)", plain.median() / 1e6, "M txn/s",
             Verdict(plain.ratio_to(map_transfer), 3.0));
  report.Add("keepstate transfer (Txn: GetMany of 2, 2 put, commit)", batched.median() / 1e6, "M txn/s",
             Verdict(batched.ratio_to(map_transfer), 3.0));
  report.Add("keepstate transfer, groups of 8 txns located ahead", grouped.median() / 1e6, "M txn/s",
             Verdict(grouped.ratio_to(map_transfer), 3.0));
#if defined(__EMSCRIPTEN__)
  const double best = std::max({plain.median(), batched.median(), grouped.median()});
  report.Add("keepstate best transfer vs 1 M txn/s target", best / 1e6, "M txn/s",
             best >= 1e6 ? "target >= 1.0: PASS" : "target >= 1.0: MISS");
#endif
  // Page-size sweep: speed and the bytes a transfer dirties (what a commit
  // must copy, hash and store), one round each.
  for (std::uint32_t ps : {4096u, 8192u, 16384u, 65536u}) {
    std::unique_ptr<Store> other;
    Store* s = store.get();
    if (ps != kDefaultPageSize) {
      other = Store::Create({ps}).value();
      LoadStore(*other, keys, n);
      s = other.get();
    }
    const std::string tag = "page " + std::to_string(ps / 1024) + " KiB";
    report.Add(tag + ": get", StoreGets(*s, keys, order, 2 * per_round) / 1e6, "M ops/s");
    report.Add(tag + ": transfer", RunTransfers(*s, keys, order, per_round, PlainTransfer) / 1e6, "M txn/s");
    report.Add(tag + ": dirty bytes per transfer", DirtyBytesPerTransfer(*s, keys, order) / 1024, "KiB");
    CheckTotal(*s, n);
  }
  report.Print();
  if (!report.WriteJson(keepstate::bench::JsonPath(argc, argv))) {
    std::fprintf(stderr, "cannot write the JSON file\n");
    return 1;
  }
  return 0;
}
