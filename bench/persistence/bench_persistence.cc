// bench_persistence: what a commit and a restore cost against the physical
// limit, measured in the same run.
//
//  - Limits: memcpy and XXH3-128 throughput over the state, and the two in
//    one pass per page ("memcpy+hash"), which is the least any capture or
//    verified restore can do.
//  - Capture (Persister::Capture: copy + hash the dirty pages, cut packs,
//    encode the manifest and head) for 16/64/256 MiB states at 0.1 %, 10 %
//    and 100 % dirty, in GB/s of dirty bytes and ms per commit.
//  - Commit cost against state size: 200 commits of 64 random dirty pages in
//    a 16 MiB and a 256 MiB state: median, mean (with the occasional full
//    manifest and compaction) and the slowest, with what it wrote; cost
//    should follow dirty bytes.
//  - Restore (RestoreLatest from a MemoryRecordStore: fetch, verify every
//    hash, rebuild the Arena) in GB/s of state.
//
// Targets, printed as PASS/MISS: capture and restore within 2x of the
// memcpy+hash time for the same bytes; 64-page commit at 256 MiB within 2x of
// the one at 16 MiB.
//
//   bench_persistence [--json <file>] [--quick]   (--quick: 16 and 64 MiB only)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bench_util.h"
#include "keepstate/engine/arena.h"
#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/restore.h"

namespace keepstate::bench {
namespace {

using engine::Arena;
using engine::PageId;
using persistence::CommitPlan;
using persistence::MemoryRecordStore;
using persistence::Persister;
using persistence::PersisterOptions;

constexpr std::uint32_t kPageSize = 4096;
constexpr double kGB = 1e9;

// Runs fn() until at least `min_seconds` and `min_reps` have passed; returns
// the fastest single run in seconds (the least disturbed by the machine's
// other tenants).
template <typename F>
double Best(F&& fn, int min_reps = 5, double min_seconds = 0.3) {
  double best = 1e30;
  const double start = Now();
  for (int i = 0; i < min_reps || Now() - start < min_seconds; ++i) {
    const double t0 = Now();
    fn();
    best = std::min(best, Now() - t0);
    if (i > 1000) break;
  }
  return best;
}

std::string Fmt(const char* f, double a, double b = 0, double c = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}

// "1.4x of limit (target <= 2x): PASS"
std::string Within(double ratio, double target) {
  return Fmt("%.2fx the memcpy+hash time (target <= %.0fx): ", ratio, target) +
         (ratio <= target ? "PASS" : "MISS");
}

Arena MakeArena(std::uint32_t pages, std::uint64_t seed) {
  Arena arena = Arena::Create(kPageSize).value();
  if (!arena.Reserve(pages).ok()) {
    std::fprintf(stderr, "cannot reserve %u pages\n", pages);
    std::exit(1);
  }
  std::mt19937_64 rng(seed);
  while (arena.page_count() < pages) {
    PageId id = arena.Allocate().value();
    std::uint64_t* p = reinterpret_cast<std::uint64_t*>(arena.Write(id));
    // Random words throughout: hashing sees realistic, incompressible data.
    for (std::uint32_t i = 0; i < kPageSize / 8; i += 8) p[i] = rng();
  }
  return arena;
}

void MarkRandomDirty(Arena& arena, std::uint32_t count, std::mt19937_64& rng) {
  std::vector<PageId> ids;
  ids.reserve(count);
  if (count >= arena.page_count()) {
    for (PageId i = 0; i < arena.page_count(); ++i) ids.push_back(i);
  } else {
    ids.push_back(0);  // the superblock changes with almost every write
    while (ids.size() < count) ids.push_back(static_cast<PageId>(rng() % arena.page_count()));
  }
  arena.MarkDirty(ids);
}

struct SizeResult {
  double limit_seconds_per_byte = 0;  // memcpy+hash
  double commit64_ms = 0;       // median
  double commit64_mean_ms = 0;  // mean, compactions and full manifests included
  double commit64_over_limit = 0;  // median / median memcpy+hash of 64 random pages
};

SizeResult BenchSize(Report& report, std::uint32_t mib, std::mt19937_64& rng) {
  const std::uint32_t pages = mib * (1u << 20) / kPageSize;
  const std::size_t bytes = std::size_t{pages} * kPageSize;
  const std::string label = std::to_string(mib) + " MiB";
  SizeResult out;

  Arena arena = MakeArena(pages, rng());
  // memcpy+hash of the first n pages into a warm buffer: the limit. Every
  // measurement below alternates with this one on the same number of bytes
  // and compares best with best, so that the other tenants of this 2-core
  // machine slow both sides alike.
  std::unique_ptr<std::uint8_t[]> dst(new std::uint8_t[bytes]);
  std::memset(dst.get(), 0, bytes);
  volatile std::uint64_t sink = 0;
  auto limit_pass = [&](std::uint32_t n) {
    const std::uint8_t* src = arena.bytes().data();
    const double t0 = Now();
    std::uint64_t acc = 0;
    for (std::size_t off = 0; off < std::size_t{n} * kPageSize; off += kPageSize) {
      std::memcpy(dst.get() + off, src + off, kPageSize);
      acc ^= XXH3_128bits(dst.get() + off, kPageSize).low64;
    }
    sink = sink + acc;
    return Now() - t0;
  };
  // The same, over the very pages a capture copied (scattered, ascending),
  // into a buffer of their size.
  auto limit_pages = [&](const std::vector<PageId>& ids) {
    const std::uint8_t* src = arena.bytes().data();
    const double t0 = Now();
    std::uint64_t acc = 0;
    std::uint8_t* out = dst.get();
    for (PageId id : ids) {
      std::memcpy(out, src + std::size_t{id} * kPageSize, kPageSize);
      acc ^= XXH3_128bits(out, kPageSize).low64;
      out += kPageSize;
    }
    sink = sink + acc;
    return Now() - t0;
  };
  // Limits, over the whole state, in this process, now.
  {
    const std::uint8_t* src = arena.bytes().data();
    const double t_copy = Best([&] { std::memcpy(dst.get(), src, bytes); });
    const double t_hash = Best([&] {
      std::uint64_t acc = 0;
      for (std::size_t off = 0; off < bytes; off += kPageSize) acc ^= XXH3_128bits(src + off, kPageSize).low64;
      sink = sink + acc;
    });
    const double t_both = Best([&] {
      std::uint64_t acc = 0;
      for (std::size_t off = 0; off < bytes; off += kPageSize) {
        std::memcpy(dst.get() + off, src + off, kPageSize);
        acc ^= XXH3_128bits(dst.get() + off, kPageSize).low64;
      }
      sink = sink + acc;
    });
    report.Add("limit " + label + ": memcpy", bytes / t_copy / kGB, "GB/s");
    report.Add("limit " + label + ": XXH3-128 per 4 KiB page", bytes / t_hash / kGB, "GB/s");
    report.Add("limit " + label + ": memcpy+hash per page", bytes / t_both / kGB, "GB/s",
               "the reference for the targets below");
    out.limit_seconds_per_byte = t_both / bytes;
  }

  PersisterOptions options;
  options.page_size = kPageSize;
  Persister persister(options);
  MemoryRecordStore store;
  // The first commit has every page dirty: it is the 100 % case.
  std::string last_kind;  // what the last capture wrote besides its dirty pages
  std::vector<PageId> last_pages;  // the pages it copied
  auto capture = [&](std::uint32_t dirty, bool apply) {
    if (dirty) MarkRandomDirty(arena, dirty, rng);
    last_pages = arena.DirtyPages();
    const std::uint32_t n = arena.dirty().Count();
    const double t0 = Now();
    CommitPlan plan = persister.Capture(arena, 0).value();
    const double t = Now() - t0;
    last_kind = std::string(plan.delta_manifest() ? "delta manifest" : "full manifest") +
                (plan.compacted() ? ", compaction moved " + std::to_string(plan.moved_pages()) + " pages" : "");
    if (apply && !store.Apply(plan.batch()).ok()) std::exit(1);
    persister.Succeeded(std::move(plan));
    return std::pair<double, std::uint32_t>(t, n);
  };
  for (double fraction : {1.0, 0.1, 0.001}) {
    const std::uint32_t dirty = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(fraction * pages));
    double best = 1e30, best_limit = 1e30;
    std::uint32_t n = 0;
    const int reps = fraction >= 1.0 && mib > 64 ? 4 : 9;
    for (int i = 0; i < reps; ++i) {
      // The first 100 % commit lands in the store: restore reads it below.
      auto [t, count] = capture(dirty, fraction >= 1.0 && i == 0);
      if (t < best) best = t, n = count;
      best_limit = std::min(best_limit, limit_pages(last_pages));
    }
    const double dirty_bytes = static_cast<double>(n) * kPageSize;
    const double ratio = best / best_limit;
    const std::string name = "capture " + label + " at " + Fmt("%g", fraction * 100) + " % dirty";
    report.Add(name, dirty_bytes / best / kGB, "GB/s",
               fraction >= 0.1 ? Within(ratio, 2.0)
                               : std::to_string(n) + " pages");
    report.Add(name + ": time per commit", best * 1e3, "ms");
  }
  {
    // 200 commits of 64 random pages each: the mean is the amortized cost,
    // full manifests included (written when merged deltas reach half the
    // pages); the median is a typical commit.
    // The limit for the same work: memcpy+hash of 64 random pages (cold in
    // a large state, as the commit's are).
    std::vector<double> limits;
    auto random_limit = [&] {
      std::uint64_t acc = 0;
      const double t0 = Now();
      for (int k = 0; k < 64; ++k) {
        const std::size_t off = std::size_t(rng() % pages) * kPageSize;
        std::memcpy(dst.get() + off, arena.bytes().data() + off, kPageSize);
        acc ^= XXH3_128bits(dst.get() + off, kPageSize).low64;
      }
      sink = sink + acc;
      return Now() - t0;
    };
    std::vector<double> times;
    double slowest = 0;
    std::string slowest_kind;
    int full = 0, compacting = 0;
    for (int i = 0; i < 200; ++i) {
      times.push_back(capture(64, false).first);
      limits.push_back(random_limit());
      full += last_kind.rfind("full", 0) == 0;
      compacting += last_kind.find("compaction") != std::string::npos;
      if (times.back() > slowest) slowest = times.back(), slowest_kind = last_kind;
    }
    double sum = 0;
    for (double t : times) sum += t;
    std::sort(times.begin(), times.end());
    std::sort(limits.begin(), limits.end());
    out.commit64_ms = times[times.size() / 2] * 1e3;
    out.commit64_over_limit = times[times.size() / 2] / limits[limits.size() / 2];
    out.commit64_mean_ms = sum / times.size() * 1e3;
    report.Add("capture " + label + ", 64 dirty pages: median of 200 commits", out.commit64_ms, "ms",
               Fmt("%.2fx memcpy+hash of 64 random pages (%.3f ms)", out.commit64_over_limit,
                   limits[limits.size() / 2] * 1e3));
    report.Add("capture " + label + ", 64 dirty pages: mean of 200 commits", out.commit64_mean_ms, "ms",
               std::to_string(full) + " wrote a full manifest, " + std::to_string(compacting) + " compacted");
    report.Add("capture " + label + ", 64 dirty pages: slowest", slowest * 1e3, "ms", slowest_kind);
  }

  // Restore: the store holds the full first commit plus later ones that were
  // not applied, so RestoreLatest reads exactly one full version.
  {
    persistence::RestoreOptions ro;
    ro.max_state_bytes = std::uint64_t{1} << 31;
    double best = 1e30, best_limit = 1e30;
    for (int i = 0; i < (mib <= 64 ? 7 : 3); ++i) {
      const double t0 = Now();
      Result<persistence::Restored> r = persistence::RestoreLatest(store, ro);
      const double t = Now() - t0;
      if (!r.ok() || r->arena.page_count() != pages) {
        std::fprintf(stderr, "restore failed: %s\n", r.status().ToString().c_str());
        std::exit(1);
      }
      best = std::min(best, t);
      best_limit = std::min(best_limit, limit_pass(pages));
    }
    const double ratio = best / best_limit;
    report.Add("restore " + label + " (fetch, verify, rebuild)", bytes / best / kGB, "GB/s",
               Within(ratio, 2.0));
    report.Add("restore " + label + ": time", best * 1e3, "ms");
  }
  return out;
}

}  // namespace
}  // namespace keepstate::bench

int main(int argc, char** argv) {
  using namespace keepstate::bench;
  const bool quick = HasFlag(argc, argv, "--quick");
  Report report("bench_persistence: capture and restore vs memcpy+XXH3");
  std::mt19937_64 rng(20261127);
  std::vector<std::uint32_t> sizes = {16, 64};
  if (!quick) sizes.push_back(256);
  std::vector<SizeResult> results;
  for (std::uint32_t mib : sizes) results.push_back(BenchSize(report, mib, rng));
  const SizeResult& small = results.front();
  const SizeResult& large = results.back();
  const double ratio = large.commit64_ms / small.commit64_ms;  // median
  report.Add("64-page commit (median of 200), " + std::to_string(sizes.back()) + " MiB vs 16 MiB state", ratio,
             "x", "includes the caches: 64 random pages of a large state are colder");
  const double overhead = large.commit64_over_limit / small.commit64_over_limit;
  report.Add("64-page commit over its memcpy+hash limit, " + std::to_string(sizes.back()) + " MiB vs 16 MiB",
             overhead, "x",
             std::string("cost follows dirty bytes, not state size (target <= 2x): ") +
                 (overhead <= 2.0 ? "PASS" : "MISS"));
  report.Add("64-page commit (mean of 200), " + std::to_string(sizes.back()) + " MiB vs 16 MiB state",
             large.commit64_mean_ms / small.commit64_mean_ms, "x",
             "includes compactions, whose size follows the dead bytes earlier commits left");
  report.Print();
  if (!report.WriteJson(JsonPath(argc, argv))) {
    std::fprintf(stderr, "cannot write JSON\n");
    return 1;
  }
  return 0;
}
