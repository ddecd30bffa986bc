// Restore: rebuild an Arena from stored records, verifying everything, and
// fall back to older retained versions when the newest does not verify.
//
// Nothing read from a RecordStore is trusted: every size, index, offset and
// hash is checked before use; a mismatch is a Corruption that names the
// version, the record and (for page data) the page; a newer format is
// Unsupported. No input can crash the reader (fuzzed: fuzz_restore.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/persistence/format.h"
#include "keepstate/persistence/record_store.h"
#include "keepstate/status.h"

namespace keepstate::persistence {

struct RestoreOptions {
  // Manifests of another store are rejected (0: accept any store id).
  std::uint64_t store_id = 0;
  // The page size the caller expects (0: take the manifest's).
  std::uint32_t page_size = 0;
  // Upper bound on the rebuilt state; a manifest claiming more is rejected
  // before anything is allocated. An arena is one block of memory, and wasm's
  // malloc gives none of 2 GiB (4 GiB of linear memory in all).
  std::uint64_t max_state_bytes = std::uint64_t{2} << 30;
  // How many versions RestoreLatest tries, newest first.
  std::size_t max_versions = 8;
};

// One manifest of a version's chain (see ResolveManifest).
struct ManifestLink {
  std::uint64_t version = 0;      // the manifest's version (its key)
  std::uint64_t check = 0;        // low 64 bits of its record's checksum
  bool full = false;              // a full manifest (the chain's first link)
  std::vector<std::uint32_t> pages;  // a delta's changed pages, ascending (full: empty)
};

// A version's page table with the manifests it was read from.
struct ResolvedManifest {
  // The version's own manifest, with `pages` holding the whole page table
  // (pack indices into its own `packs`) even when it was stored as a delta:
  // a full manifest (delta fields cleared) that EncodeManifest can write.
  Manifest manifest;
  std::vector<ManifestLink> chain;  // oldest (full) first, the version's own last
};

// Manifests already read, verified and decoded, by version and record
// checksum (ManifestLink::check). A store catching up with a newer version of
// its own stored state resolves the chain from them instead of reading and
// decoding those records again (js-bindings' follow: a 256 MiB state's full
// manifest is 1.5 MiB). An entry is used only where the checksum is known to
// be the stored record's: a head's manifest_check, a delta's
// delta_base_check, or the trailer of the record as read. So a record that
// was rewritten since (a fresh version line reusing a key) is never taken for
// the cached one.
class ManifestCache {
 public:
  // nullptr if not held.
  std::shared_ptr<const Manifest> Find(std::uint64_t version, std::uint64_t check) const;
  bool Holds(std::uint64_t version) const { return entries_.count(version) != 0; }
  void Add(std::uint64_t version, std::uint64_t check, std::shared_ptr<const Manifest> manifest);
  // Drops every entry whose version `keep` does not name.
  void KeepOnly(const std::set<std::uint64_t>& keep);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::uint64_t check = 0;
    std::shared_ptr<const Manifest> manifest;
  };
  std::map<std::uint64_t, Entry> entries_;
};

// Reads manifest `version` and, if it is a delta, its bases down to a full
// manifest (at most kMaxManifestChain records), checking that each base is
// the exact record the delta was written over (delta_base_check), belongs to
// the same store with the same page size and no more pages, and that every
// page ends up in a pack `version` lists. If `expected_manifest_check` is
// set, manifest `version`'s checksum (low 64 bits) must equal it. Reads no
// packs. Errors: Corruption "version V: manifests/K: <what>", Unsupported
// (newer format), OutOfSpace above options.max_state_bytes (checked before
// anything is sized by the claimed page count), and the store's own errors
// prefixed the same way. With `cache`, links it holds are taken from it (see
// ManifestCache) and the records decoded are added to it.
Result<ResolvedManifest> ResolveManifest(RecordStore& store, std::uint64_t version,
                                         const RestoreOptions& options,
                                         std::optional<std::uint64_t> expected_manifest_check = {},
                                         ManifestCache* cache = nullptr);

// A state already in memory that a restore may take pages from instead of
// reading their packs: a store catching up with a newer version of its own
// stored state reads only the pages that changed (js-bindings' follow and
// rebase). `holds(page, hash)` must be true only if `arena` holds exactly the
// bytes `hash` names at `page` (Persister::Holds: a clean page of the
// committed version with that hash).
//
// With `stage_only`, the restore builds no arena: the pages read are
// verified into Restored::staged (in read_pages order) and Restored::arena is
// a placeholder of one page. The caller then applies the staged pages to the
// base's own arena (Arena::ApplyPages: a catch-up in place, with no copy of
// the unchanged pages).
//
// `manifests`, if set, is the base's ManifestCache: the restore resolves
// manifest chains from it (and may leave the records it holds unread).
struct RestoreBase {
  const engine::Arena* arena = nullptr;
  std::function<bool(std::uint32_t page, const Hash128& hash)> holds;
  bool stage_only = false;
  const ManifestCache* manifests = nullptr;
};

struct RestoredVersion {
  engine::Arena arena;  // all pages clean
  Manifest manifest;    // the verified manifest it was built from (resolved: full page table)
  std::vector<ManifestLink> chain;  // as ResolveManifest
};

// Restores exactly `version`. If `expected_manifest_check` is set, the
// manifest record's checksum (low 64 bits) must equal it: this binds a head
// to the exact manifest it was committed with.
// Errors: Corruption "version V: <record>: <what>" for any missing record,
// size, checksum, structure, hash, superblock mismatch; Unsupported for a
// newer format; OutOfSpace above max_state_bytes.
Result<RestoredVersion> RestoreVersion(RecordStore& store, std::uint64_t version,
                                       const RestoreOptions& options,
                                       std::optional<std::uint64_t> expected_manifest_check = {});

// Why one candidate was not restored.
struct VersionFailure {
  std::uint64_t version = 0;  // 0: the head record itself
  Status status;
};

struct Restored {
  engine::Arena arena;
  Manifest manifest;               // of the restored version (resolved: full page table)
  std::vector<ManifestLink> chain; // the manifests it was read from, oldest first
  std::optional<Head> head;        // the stored head, if it decoded
  bool head_unreadable = false;    // a head is stored but did not decode (Corruption)
  std::vector<VersionFailure> failures;  // newest first; empty if the head's version restored
  // Newest version number seen anywhere (head or manifest keys): the next
  // commit must be numbered above it.
  std::uint64_t newest_seen_version = 0;
  // With a RestoreBase: the pages read from packs (ascending); the others
  // were taken from the base.
  std::vector<std::uint32_t> read_pages;
  // With RestoreBase::stage_only: the bytes of read_pages, back to back.
  std::vector<std::uint8_t> staged;

  bool fell_back() const { return !failures.empty(); }
};

// Reads the head, then tries the head's version and older retained versions
// (manifest keys, newest first, at most options.max_versions), returning the
// first that verifies, with the failures of those that did not.
//  - If the head is unreadable, every stored manifest is a candidate: a
//    manifest only exists if the batch that wrote it also wrote its head.
//  - An Unsupported head or manifest stops the search and is returned: a
//    newer build wrote the store, and falling back to an older version would
//    silently hide its data.
// Errors: NotFound (empty store: no head, no manifest), Unsupported,
// Corruption (nothing verified; the message lists every failure).
// Memory: the rebuilt state plus one pack at a time.
Result<Restored> RestoreLatest(RecordStore& store, const RestoreOptions& options);

// RestoreLatest fed one pack at a time, for callers whose reads are
// asynchronous (js-bindings reads IndexedDB): the session reads the head and
// manifests from `store` synchronously (its packs object store need only
// list keys, for Persister::Open), and asks for the packs it needs, one at a
// time, in the order it verifies them. Each pack's pages are verified and
// copied into the state as it arrives, so only one pack is ever staged.
// RestoreLatest and RestoreVersion are this loop over RecordStore::GetInto.
//
//   KEEPSTATE_ASSIGN_OR_RETURN(RestoreSession s, RestoreSession::Begin(store, options));
//   while (std::optional<PackId> id = s.needed()) s.Add(<bytes of packs/PackKey(*id)>);
//   Result<Restored> r = std::move(s).Finish();
class RestoreSession {
 public:
  // Reads the head and lists the manifests; starts the first candidate.
  // Errors (nothing to restore from): NotFound (empty store), Unsupported
  // (a newer head), and the store's own read errors.
  // With `base`, pages it holds are copied from it and never read (their
  // packs are asked for only if they hold other pages too); `base` must
  // outlive the session. With `cache`, manifests are resolved through it
  // (ResolveManifest); it must outlive the session.
  static Result<RestoreSession> Begin(RecordStore& store, const RestoreOptions& options,
                                      const RestoreBase* base = nullptr, ManifestCache* cache = nullptr);
  // Exactly `version` (RestoreVersion), no fallback.
  static Result<RestoreSession> BeginVersion(RecordStore& store, std::uint64_t version,
                                             const RestoreOptions& options,
                                             std::optional<std::uint64_t> expected_manifest_check);
  ~RestoreSession();
  RestoreSession(RestoreSession&&) noexcept;
  RestoreSession& operator=(RestoreSession&&) noexcept;

  // The pack to Add next; nullopt once the session has finished.
  std::optional<PackId> needed() const;
  // The pack the current candidate needs after that one, if any: an
  // asynchronous reader fetches it while the needed one is verified.
  std::optional<PackId> needed_after() const;
  // Up to `max` packs the current candidate needs after the needed one, in
  // the order it will ask for them (needed_after() first): a reader may fetch
  // them all at once. A verification failure changes the candidate, and with
  // it what is needed: whatever was fetched ahead may then go unused.
  std::vector<PackId> needed_ahead(std::size_t max) const;
  // The bytes of the packs the current candidate still reads (the needed one
  // and every later one, as the manifest records their sizes), 0 once the
  // session has finished: a reader's progress total. A verification failure
  // changes the candidate, and with it this figure.
  std::uint64_t needed_bytes() const;
  // Feeds the needed pack: its bytes, or nullopt if it is not stored. A pack
  // that fails verification makes its version a failure and the session
  // moves on to the next candidate. Returns an error only when the restore
  // stops (a non-corruption error such as OutOfSpace, or nothing left to
  // try); Finish returns the same error.
  Status Add(std::optional<std::span<const std::uint8_t>> pack);
  // Feeds a read error of the needed pack (not NotFound): the restore stops
  // with it, as RestoreLatest does for a storage failure.
  void Fail(const Status& read_error);
  // REQUIRES: !needed(). The restored state, or why there is none (as
  // RestoreLatest; RestoreVersion's errors for a BeginVersion session).
  Result<Restored> Finish() &&;
  // The candidates that failed verification so far, newest first (version
  // 0: the head record itself). After the session ends with Corruption, each
  // version that was tried and why it failed.
  const std::vector<VersionFailure>& failures() const;

 private:
  struct State;
  explicit RestoreSession(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace keepstate::persistence
