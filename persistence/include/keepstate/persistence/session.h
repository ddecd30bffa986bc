// StoreSession: one writer's life with one stored state — the rules that
// keep data safe, in one place that every storage path runs.
//
//   open      which version to restore (newest verified, falling back), with
//             the page size the store was created with; if nothing verifies,
//             Corruption listing every version and why, with no record
//             touched — or, with PersisterOptions::on_all_damaged =
//             kOpenEmpty, an empty state on a fresh version line whose first
//             commit clears the unreadable records;
//   commit    capture the dirty pages into a plan and a WriteBatch that
//             carries what the head check needs (the exact head this state
//             is based on, and clear-first for a fresh line); the check
//             itself is CheckStoredHead (head_check.h), run inside the
//             atomic write by whoever holds the stored head — the in-memory
//             store, the fuzzer, and the browser's IndexedDB transaction
//             (through CheckHead) alike;
//   complete  the outcome of that write: the version is committed, or the
//             captured pages are dirty again.
//
// Opening can be fed asynchronously (the browser reads IndexedDB): Load()
// the head, the manifests and the packs' keys, then BeginOpen(), then while
// needed() names a pack, AddPack() its bytes; then FinishOpen(). Open() is
// that loop over a RecordStore, for native callers.
//
// Invariants:
//  - At most one plan in flight (Capture returns Busy otherwise).
//  - A commit lands only if the stored head is exactly the head record the
//    state is based on (the Persister keeps it: the one read at open, then
//    each commit's own), so a head rewritten at the same version by another
//    writer is a conflict, and a head that did not decode can be replaced
//    only by the writer that saw exactly it.
//  - fresh_line() is true from an open that verified nothing (and was asked
//    to open empty) until the first successful commit; while it is, batches
//    clear the store first.
//
// Thread safety: none (single-threaded, like the rest of keepstate).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/persistence/format.h"
#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/record_store.h"
#include "keepstate/persistence/restore.h"
#include "keepstate/status.h"

namespace keepstate::persistence {

// What an open found.
struct OpenReport {
  std::uint64_t restored_version = 0;   // 0: empty (new, or a fresh line)
  bool fresh_line = false;              // nothing verified, opened empty (OnAllDamaged::kOpenEmpty)
  // Why versions were skipped, newest first, one entry per version tried
  // (version 0: the head record). Also filled when FinishOpen refuses a store
  // whose every version is damaged (then it returns Corruption).
  std::vector<VersionFailure> failures;
  // Opened with a RestoreBase: the pages read from packs, ascending (the rest
  // came from the base).
  std::optional<std::vector<std::uint32_t>> read_pages;
  // Opened with RestoreBase::stage_only: the read pages' bytes (read_pages
  // order) and the restored page count; the arena FinishOpen returns is then a
  // placeholder, and the caller applies these to the base's arena
  // (Arena::ApplyPages).
  std::vector<std::uint8_t> staged;
  std::uint32_t page_count = 0;
  bool in_place = false;  // staged and page_count hold the state (the arena is a placeholder)
};

class StoreSession {
 public:
  // `options` as the caller asks; page_size matters only for a new store.
  explicit StoreSession(PersisterOptions options);
  ~StoreSession();
  StoreSession(StoreSession&&) noexcept;
  StoreSession& operator=(StoreSession&&) noexcept;

  // --- Opening ---------------------------------------------------------------

  // Feeds one stored record before BeginOpen (packs: the key is enough).
  // Errors: InvalidArgument (bad kind), Closed (opening already began).
  Status Load(RecordKind kind, std::string_view key, std::span<const std::uint8_t> bytes);
  // Feeds one stored record whose bytes were not read: a manifest the base's
  // ManifestCache holds (see ReadManifestsFrom). If the open needs it after
  // all, FinishOpen fails with NotFound and the caller opens again, reading
  // every manifest. Errors: as Load.
  Status LoadUnread(RecordKind kind, std::string_view key);
  // Starts restoring from the loaded records, taking the pages `base` holds
  // from it (see RestoreBase; it must outlive the open). Errors: Closed
  // (began already).
  Status BeginOpen(const RestoreBase* base = nullptr);
  // The pack to AddPack next, and the one after it (fetch it meanwhile); nullopt
  // when FinishOpen can be called.
  std::optional<PackId> needed() const;
  std::optional<PackId> needed_after() const;
  // Up to `max` packs needed after needed(), in order (RestoreSession::needed_ahead).
  std::vector<PackId> needed_ahead(std::size_t max) const;
  // The bytes of the packs still to add (RestoreSession::needed_bytes).
  std::uint64_t needed_bytes() const;
  // The needed pack's bytes, or nullopt if it is not stored. A pack that fails
  // verification moves on to the next candidate version.
  void AddPack(std::optional<std::span<const std::uint8_t>> pack);
  // REQUIRES: BeginOpen() succeeded and !needed(). The restored arena (all
  // pages clean) and what was found. Errors: Corruption (data is stored but
  // no version of it verifies, and options().on_all_damaged is kRefuse: the
  // message and report->failures list each version and why; nothing was
  // written, and this session stays unopened), Unsupported (a newer format
  // wrote the store), InvalidArgument (bad options), OutOfSpace (state too
  // large), Internal.
  Result<engine::Arena> FinishOpen(OpenReport* report);
  // Load + BeginOpen + AddPack + FinishOpen over `store`'s records.
  Result<engine::Arena> Open(RecordStore& store, OpenReport* report);

  // --- Committing ------------------------------------------------------------

  // Step 1: captures the arena's dirty pages into the plan in flight.
  // Errors: Busy (a plan is in flight), not open (Closed), as Persister::Capture.
  Status Capture(engine::Arena& arena, std::uint64_t now_unix_ms);
  // The plan in flight (nullptr: none) and the batch to write for it.
  const CommitPlan* plan() const { return plan_ ? &*plan_ : nullptr; }
  // REQUIRES: plan(). Valid until CommitDone.
  WriteBatch batch() const;
  // Step 2, for a write that runs the check itself (the browser's IndexedDB
  // transaction): CheckStoredHead(batch(), stored). `stored_version` gets the
  // stored head's version (-1: it does not decode; 0: none).
  Status CheckHead(std::optional<std::span<const std::uint8_t>> stored, double* stored_version) const;
  // Step 3: the batch landed (ok) or did not (any error: nothing was written).
  // REQUIRES: plan().
  void CommitDone(const Status& outcome, engine::Arena& arena);
  // Capture + store.Apply(batch()) + CommitDone, for native callers: Apply's
  // error, if any.
  Status Commit(engine::Arena& arena, RecordStore& store, std::uint64_t now_unix_ms);

  // --- State -----------------------------------------------------------------

  bool open() const { return persister_.has_value(); }
  // The committed version the state is based on (0: none).
  std::uint64_t version() const { return version_; }
  bool fresh_line() const { return fresh_line_; }
  bool in_flight() const { return plan_.has_value(); }
  const PersisterOptions& options() const { return options_; }
  // REQUIRES: open().
  const Persister& persister() const { return *persister_; }
  // The manifests this store has read and decoded, of its retained versions'
  // chains (for RestoreBase::manifests).
  const ManifestCache& manifests() const { return manifests_; }
  // The lowest manifest version a store catching up from this one must read:
  // every manifest below it that a retained chain reads is cached, and none
  // is a retained version's own (those are resolved without a check that
  // binds them, so they are read). REQUIRES: open().
  std::uint64_t ReadManifestsFrom() const;

 private:
  PersisterOptions options_;
  std::uint32_t requested_page_size_;
  // Records fed by Load until the open finishes (head, manifests, pack keys).
  std::unique_ptr<MemoryRecordStore> loading_;
  std::optional<RestoreSession> restoring_;
  std::optional<Result<Restored>> begin_error_;  // BeginOpen found nothing to restore from
  std::optional<Persister> persister_;
  ManifestCache manifests_;  // kept to the retained chains' manifests once open
  std::optional<CommitPlan> plan_;
  std::optional<std::vector<std::uint8_t>> known_head_;  // the head found at open (a fresh line expects it)
  std::uint64_t version_ = 0;
  bool fresh_line_ = false;
  bool based_ = false;  // BeginOpen had a RestoreBase
  bool in_place_ = false;  // ... with stage_only
};

}  // namespace keepstate::persistence
