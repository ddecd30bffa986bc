// Persister: turns an Arena's dirty pages into commits (CommitPlans) and
// keeps what it needs between commits so that a commit costs O(dirty pages)
// in copying and hashing, and its manifest O(dirty pages x log) amortized
// (a delta over an older manifest; see ChooseManifestShape in persister.cc).
//
// A commit, as the engine drives it (docs/snapshot-format.md, "Commit"):
//   1. plan = persister.Capture(arena, now)   copies + hashes the dirty pages
//      into the plan's staging buffer and clears their dirty bits;
//   2. store.Apply(plan.batch())              one atomic IndexedDB transaction
//      (in the browser this is asynchronous; the arena keeps changing);
//   3. on success persister.Succeeded(plan)   the version is committed;
//      on failure persister.Failed(plan, arena) re-marks the captured pages
//      dirty (pages written since capture are dirty anyway), nothing is lost.
// Commit() does all three synchronously.
//
// Invariants:
//  - At most one plan is in flight (Capture returns Busy otherwise).
//  - Between commits, every page of the arena below the committed page count
//    is either dirty or equal to its committed bytes (hash in pages_); pages
//    at or above it are dirty (Capture checks both and returns Internal if a
//    write bypassed dirty tracking).
//  - Every pack referenced by a retained version is stored; the plan deletes
//    exactly the records no retained version references.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/engine/page_buffer.h"
#include "keepstate/persistence/format.h"
#include "keepstate/persistence/record_store.h"
#include "keepstate/persistence/restore.h"
#include "keepstate/status.h"

namespace keepstate::persistence {
namespace internal {
struct PersisterState;  // defined in persister.cc
}  // namespace internal

// What StoreSession::FinishOpen does when a store holds data but no retained
// version of it verifies (every one damaged).
enum class OnAllDamaged : std::uint32_t {
  // Refuse: the open fails with Corruption listing each version and why, and
  // no record is touched (the default: an app must choose to lose data).
  kRefuse = 0,
  // Open an empty state on a fresh version line, whose first successful
  // commit clears every stored record (the damaged versions included).
  kOpenEmpty = 1,
};

struct PersisterOptions {
  std::uint64_t store_id = 1;
  // Unique per writer (tab); part of every pack key this writer creates.
  std::uint64_t writer_id = 1;
  std::uint32_t page_size = engine::kDefaultPageSize;
  // A commit's pages are cut into packs of at most this many bytes (1-8 MiB
  // suits IndexedDB: few large records). REQUIRES: >= page_size.
  std::uint32_t max_pack_bytes = 8u << 20;
  // Versions kept fully restorable (the current one included). REQUIRES: >= 1.
  std::uint32_t retain_versions = 2;
  // Compaction starts when dead bytes exceed this fraction of the bytes in
  // the current version's packs, and rewrites the sparsest packs until dead
  // bytes are at most compact_target_fraction of them.
  double compact_dead_fraction = 0.5;
  double compact_target_fraction = 0.25;
  // Compaction also merges the smallest packs when the current version reads
  // from more than this many packs (restore cost is per record), or from more
  // than twice as many as its live bytes fill, where that is more.
  std::uint32_t max_packs = 256;
  // See OnAllDamaged. A store with no head and no manifest (a new one)
  // opens empty either way.
  OnAllDamaged on_all_damaged = OnAllDamaged::kRefuse;
};

// What one commit writes and deletes. Owns the staging buffer its records
// point into; movable, not copyable (moving keeps the views valid).
class CommitPlan {
 public:
  ~CommitPlan();
  CommitPlan(CommitPlan&&) noexcept;
  CommitPlan& operator=(CommitPlan&&) noexcept;
  CommitPlan(const CommitPlan&) = delete;
  CommitPlan& operator=(const CommitPlan&) = delete;

  std::uint64_t version() const { return version_; }
  // The stored head version Apply must find (kUnreadableHead: the corrupt
  // head found at Open).
  std::uint64_t base_version() const { return expected_head_; }
  // Packs first, then the manifest, then the head.
  std::span<const Record> puts() const { return puts_; }
  // Records no retained version references once this commit lands.
  std::span<const RecordKey> deletes() const { return deletes_; }
  // The pages whose dirty bits Capture cleared (re-marked by Failed()).
  std::span<const engine::PageId> captured_pages() const { return captured_; }
  // The atomic write of this plan: the exact head it expects, clear-first for
  // a fresh line, the puts and the deletes.
  WriteBatch batch() const {
    WriteBatch b{std::nullopt, clear_first_, puts_, deletes_};
    if (expected_head_record_) b.expected_head = std::span<const std::uint8_t>(*expected_head_record_);
    return b;
  }

  std::uint32_t dirty_pages() const { return static_cast<std::uint32_t>(captured_.size()); }
  std::uint32_t moved_pages() const { return moved_pages_; }  // by compaction
  std::uint64_t staged_bytes() const { return staging_size_; }
  std::uint64_t manifest_bytes() const { return manifest_.size(); }
  bool compacted() const { return moved_pages_ > 0; }
  // The manifest is a delta over an older one (else a full page table).
  bool delta_manifest() const { return delta_manifest_; }

 private:
  friend class Persister;
  CommitPlan();

  std::uint64_t version_ = 0;
  std::uint64_t expected_head_ = 0;
  std::optional<std::vector<std::uint8_t>> expected_head_record_;  // see WriteBatch::expected_head
  bool clear_first_ = false;
  // Pack bytes, back to back. Not value-initialised: every byte is
  // overwritten by a page copy, and zeroing would cost a pass over it.
  engine::PageBuffer staging_;
  std::size_t staging_size_ = 0;
  std::size_t staging_capacity_ = 0;  // bytes allocated (reused buffers are larger)
  std::vector<std::uint8_t> manifest_;  // the manifest record
  std::vector<std::uint8_t> head_;      // the head record
  std::vector<Record> puts_;
  std::vector<RecordKey> deletes_;
  std::vector<engine::PageId> captured_;
  std::uint32_t moved_pages_ = 0;
  bool delta_manifest_ = false;
  std::unique_ptr<internal::PersisterState> next_;  // persister state once committed
};

class Persister {
 public:
  // For a store with nothing in it yet.
  explicit Persister(PersisterOptions options);
  ~Persister();
  Persister(Persister&&) noexcept;
  Persister& operator=(Persister&&) noexcept;

  struct Opened;
  // Restores the newest verified version (falling back as RestoreLatest
  // does) and a Persister that continues from it; an empty store gives a
  // fresh Arena. Records of versions that are not retained (a corrupt newer
  // one, older ones) are deleted by the next successful commit.
  // Errors: as RestoreLatest (except NotFound), and InvalidArgument for bad
  // options.
  static Result<Opened> Open(RecordStore& store, PersisterOptions options);
  // Open's second half, for a restore the caller ran itself (a
  // RestoreSession fed asynchronously, with RestoreOptionsFor(options)):
  // `store` must hold the same head and manifests and list the same pack
  // keys (their bytes are not read). With `cache`, the older retained
  // versions' manifests are resolved through it (ResolveManifest).
  static Result<Opened> OpenFrom(RecordStore& store, PersisterOptions options, Result<Restored> restored,
                                 ManifestCache* cache = nullptr);
  static RestoreOptions RestoreOptionsFor(const PersisterOptions& options);
  // For a fresh version line over stored data that did not verify: an empty
  // state whose commits clear the store first until one succeeds, expecting
  // exactly `stored_head` (nullopt: none) as the stored head.
  static Persister FreshLine(PersisterOptions options, std::optional<std::vector<std::uint8_t>> stored_head);

  // Step 1 of a commit (see the file comment). Errors: Busy (a plan is in
  // flight), InvalidArgument (page size differs from the options), Internal
  // (a page changed without being marked dirty). On error nothing changes.
  Result<CommitPlan> Capture(engine::Arena& arena, std::uint64_t now_unix_ms);
  // Step 3, success: the plan's version becomes the committed one.
  // REQUIRES: plan came from this persister's last Capture.
  void Succeeded(CommitPlan&& plan);
  // Step 3, failure (including Conflict): forget the plan, re-mark its pages.
  void Failed(CommitPlan&& plan, engine::Arena& arena);

  // Capture + Apply + Succeeded/Failed. Returns the Apply error, if any.
  Status Commit(engine::Arena& arena, RecordStore& store, std::uint64_t now_unix_ms);

  // Whether `arena` holds at `page` exactly the committed bytes `hash` names:
  // the page is clean, no plan is in flight, and the committed version has
  // that hash there (for RestoreBase: a catch-up reuses such pages).
  bool Holds(const engine::Arena& arena, engine::PageId page, const Hash128& hash) const;
  // The versions retained, and every manifest version their chains read.
  std::set<std::uint64_t> RetainedVersions() const;
  std::set<std::uint64_t> RetainedManifests() const;

  // The version of the last commit (or of the restored head); 0 before any.
  std::uint64_t version() const;
  // Stored head version the next commit must find (its base), or
  // kUnreadableHead after Open found a corrupt head.
  std::uint64_t head_version() const;
  bool in_flight() const { return in_flight_; }
  const PersisterOptions& options() const { return options_; }
  // Bytes of the packs the current version reads from, and the live page
  // bytes among them (for monitoring and tests).
  std::uint64_t current_pack_bytes() const;
  std::uint64_t current_live_bytes() const;

 private:
  // Gives plan a staging buffer of at least plan.staging_size_ bytes: the
  // spare one if it fits, else a new one. OutOfSpace if none can be had.
  Status TakeStaging(CommitPlan& plan);
  // Takes back a finished plan's staging buffer for the next Capture.
  void RecycleStaging(CommitPlan& plan);

  std::unique_ptr<internal::PersisterState> state_;
  PersisterOptions options_;
  bool in_flight_ = false;
  // The last finished commit's staging buffer, reused by the next Capture
  // that fits in it: a fresh buffer costs a page fault and the kernel's
  // zeroing per page natively (a quarter of bench_persistence's native
  // time went to clear_page). At most one commit's staging is kept.
  engine::PageBuffer spare_staging_;
  std::size_t spare_capacity_ = 0;
};

struct Persister::Opened {
  engine::Arena arena;
  Persister persister;
  std::uint64_t restored_version = 0;     // 0: the store was empty
  std::vector<VersionFailure> failures;   // why newer versions were skipped
};

}  // namespace keepstate::persistence
