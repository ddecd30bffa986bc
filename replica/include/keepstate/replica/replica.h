// Replica: one in-memory state of a stored store — the engine Store, the
// StoreSession that opens and commits it, the open write transaction, the
// dirty flag, the pages staged by an in-place catch-up and the snapshot file
// being exported. The C ABI (js-bindings/exports.cc) is a handle table over
// Replicas; a native host (a server, a test) uses them directly over any
// RecordStore. The caller does the I/O: a Replica only ever sees bytes.
//
// Lifecycle:
//   new       Load / LoadUnread the stored records (packs: keys only);
//   opening   Open() or OpenFrom(base) until the progress needs no pack
//             (AddPack feeds each one asked for);
//   staged    (OpenFrom in place only) the changed pages wait for
//             AdoptInPlace(base), which applies them to base's arena and
//             takes it over, leaving base closed;
//   open      reads, writes, transactions, watch, diff, export, import
//             adoption, and commits: Capture → batch() written by the caller
//             with CheckHead inside its atomic write → CommitDone.
// Every operation of the open state answers Closed before it.
//
// Invariants:
//  - changed_ is true iff a write landed since the last capture, or a
//    captured commit failed; dirty() is changed_ || a commit is in flight.
//  - At most one transaction, one export and one commit in flight.
//  - A Replica opened from a base keeps, until it is opened, a RestoreBase
//    that points into that base (REQUIRES: the base outlives the open).
//  - id() is unique in the process and never reused, so a Replica names its
//    base by id and never reaches a destroyed one.
//
// Thread safety: none (single-threaded, like the rest of keepstate).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keepstate/engine/changes.h"
#include "keepstate/engine/store.h"
#include "keepstate/persistence/head_check.h"
#include "keepstate/persistence/restore.h"
#include "keepstate/persistence/session.h"
#include "keepstate/persistence/snapshot_file.h"
#include "keepstate/sdk/module.h"
#include "keepstate/status.h"

namespace keepstate::replica {

using persistence::PackId;
using persistence::RecordKind;

// fn(key, value now; nullopt: the key no longer exists), once per key, in key order.
using ChangeFn = std::function<void(std::string_view key, std::optional<std::string_view> value)>;
// fn(key, value) per entry; false stops the scan.
using EntryFn = std::function<bool(std::string_view key, std::string_view value)>;

// Where an open stands after Open, OpenFrom or AddPack.
struct OpenProgress {
  std::optional<PackId> need;  // the pack to AddPack next; nullopt: the open finished
  std::vector<PackId> ahead;   // packs needed after it, in order (read them meanwhile)
  std::uint64_t bytes = 0;     // the manifest's sizes of `need` and every pack after it (progress)
  // Once finished: what the open found (its pages stay in the Replica:
  // read_pages(); report.in_place: staged, waiting for AdoptInPlace).
  persistence::OpenReport report;
};

// A snapshot file being imported (docs/snapshot-format.md): fed in chunks,
// each page verified as it arrives, then verified whole, then adopted by a
// Replica (AdoptImport).
class Import {
 public:
  // file_size: the file's size if known (a bound checked as bytes arrive).
  explicit Import(std::optional<std::uint64_t> file_size);
  ~Import();
  Import(Import&&) noexcept;
  Import& operator=(Import&&) noexcept;

  // The file's next bytes. Errors: Corruption, Unsupported (a newer format),
  // OutOfSpace (too large), InvalidArgument (the import was finished).
  Status Add(std::span<const std::uint8_t> bytes);
  // The whole file was fed: verifies the rest (trailer, checksum, the tree).
  // Errors: as Add.
  Status Finish();
  // True once Finish succeeded and until a Replica adopts the state.
  bool verified() const { return done_.has_value(); }
  // REQUIRES: verified(). The file's description.
  const persistence::SnapshotFileInfo& info() const { return done_->info; }

 private:
  friend class Replica;
  std::optional<persistence::SnapshotReader> reader_;  // until Finish
  std::optional<persistence::ImportedSnapshot> done_;  // after Finish, until adopted
};

// A synced state's meta (docs/sync.md).
struct SyncMeta {
  std::uint64_t server_version = 0;    // the server version the unmarked keys have
  std::uint64_t last_mutation_id = 0;  // the server processed this client's mutations up to here
  std::uint64_t next_mutation_id = 1;  // the id Journal gives next
  std::string client;
};
inline constexpr std::string_view kSyncMeta = "\xFFs";  // (no other reserved key starts with it)
inline constexpr std::string_view kSyncMutationPrefix = "\xFFm";  // + the id, 8 bytes big-endian
inline constexpr std::string_view kSyncMarkPrefix = "\xFFk";      // + the key
// Keys starting with 0xFF are keepstate's (no UTF-8 text starts with it).
inline bool Reserved(std::string_view key) { return !key.empty() && static_cast<unsigned char>(key[0]) == 0xFF; }

class Replica {
 public:
  // `options` as the caller asks; page_size matters only for a new store.
  explicit Replica(persistence::PersisterOptions options);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // The options of the C ABI's keepstate_store_new: 0 keeps the default page
  // size and retained versions; writer_id names this writer in pack keys.
  static persistence::PersisterOptions OptionsFor(std::uint32_t page_size, std::uint32_t retain, std::uint64_t writer_id,
                                                  bool open_empty_if_damaged = false);

  // Unique in the process, never reused (never 0).
  std::uint32_t id() const { return id_; }

  // --- Opening ---------------------------------------------------------------

  // Feeds one stored record before Open (packs: the key only).
  // Errors: InvalidArgument (bad kind), Closed (opening began).
  Status Load(RecordKind kind, std::string_view key, std::span<const std::uint8_t> bytes);
  // A record that is stored but was not read (a catch-up leaves the
  // manifests below its base's ReadManifestsFrom unread). Errors: as Load.
  Status LoadUnread(RecordKind kind, std::string_view key);
  // Starts restoring the newest verified version from the loaded records
  // (falling back to older ones), or opens empty; then AddPack while the
  // progress needs one. Errors: Unsupported (a newer format wrote the store),
  // InvalidArgument (bad options), OutOfSpace (state too large), Closed
  // (already opening), NotFound (a manifest loaded unread was needed: open a
  // new Replica reading every manifest).
  Result<OpenProgress> Open();
  // Open() for a Replica catching up with a newer version of `base`'s state
  // (same store): the pages base holds unchanged (clean, and committed with
  // the same hash) are taken from it, so only the changed packs are asked
  // for. in_place (base clean): nothing is copied, the changed pages are
  // staged, and AdoptInPlace(base) completes the open. REQUIRES: base
  // outlives the open. Errors: as Open; Closed (base is not open).
  Result<OpenProgress> OpenFrom(Replica& base, bool in_place);
  // The pack the progress asked for (nullopt: not stored). Answers as Open.
  // Errors: as Open; Closed (no pack was asked for).
  Result<OpenProgress> AddPack(std::optional<std::span<const std::uint8_t>> pack);
  // Completes an in-place OpenFrom: applies the staged pages to base's arena,
  // which becomes this Replica's (base is left closed: destroy it), and keeps
  // what changed for base's watched keys (DiffFrom). Errors: Busy (base
  // changed meanwhile: uncommitted writes, a commit, a transaction or an
  // export; nothing changed, open again without in_place), Corruption (the
  // state the pages would make; nothing changed), Closed (base not open),
  // InvalidArgument (not an in-place open of base).
  Status AdoptInPlace(Replica& base);
  // True while an in-place open waits for AdoptInPlace.
  bool staged() const { return !store_ && read_pages_ && base_id_ != 0; }
  // The id of the Replica OpenFrom caught up from (0: none).
  std::uint32_t base_id() const { return base_id_; }
  // The lowest manifest key a Replica catching up from this one
  // (OpenFrom) must read; it may LoadUnread those below. Errors: Closed.
  Result<std::string> ReadManifestsFrom() const;
  // After OpenFrom: the pages read from packs, ascending (the rest came from the base).
  const std::optional<std::vector<std::uint32_t>>& read_pages() const { return read_pages_; }

  // --- State -----------------------------------------------------------------

  bool open() const { return store_ != nullptr; }
  // The committed version the state is based on (0: none).
  std::uint64_t version() const { return session_.version(); }
  // Uncommitted changes, a commit in flight included.
  bool dirty() const { return changed_ || session_.in_flight(); }
  // The engine store (nullptr: not open), for native hosts and mutator calls.
  engine::Store* store() { return store_.get(); }
  // A write reached the store other than through this class (a mutator's
  // committed transaction): the state is dirty.
  void MarkChanged() { changed_ = true; }

  // --- Reads and writes: in_txn = true goes through the open transaction ---
  // Errors of each: Closed (not open; in_txn and no transaction is open),
  // InvalidArgument (key or value size).

  // NotFound if absent.
  Status Get(bool in_txn, std::string_view key, std::string* value) const;
  // Ok if the key exists, NotFound if not.
  Status Has(bool in_txn, std::string_view key) const;
  // Also: Busy (a transaction is open and in_txn is false), OutOfSpace.
  Status Put(bool in_txn, std::string_view key, std::string_view value);
  // Ok if the key was deleted, NotFound if it did not exist. Errors as Put.
  Status Delete(bool in_txn, std::string_view key);
  Status Scan(bool in_txn, const engine::ScanOptions& options, const EntryFn& fn) const;
  // Opens the write transaction. Errors: Busy (one is open), Closed.
  Status Begin();
  // Commits (commit) or aborts it. Errors: Closed (none open), OutOfSpace
  // (memory cannot grow; nothing applied).
  Status End(bool commit);

  // The application's schema version, of the store or as the transaction
  // sees it; 0 if not open (or no transaction).
  std::uint64_t schema_version(bool in_txn) const;
  // In the open transaction (applied by its commit). Errors: Closed (no transaction).
  Status SetSchemaVersion(std::uint64_t version);
  // Runs the registered C++ migrations (keepstate::sdk) with from < version
  // <= to, in order, in the open transaction. Errors: the first migration's
  // error (the caller aborts), Closed (no transaction).
  Status RunMigrations(std::uint64_t from, std::uint64_t to);

  // --- Changes ---------------------------------------------------------------

  // Records, from now, the keys of the writes that land in `ranges` (none:
  // recording stops, what was recorded is dropped). Errors: Closed.
  Status Watch(std::vector<engine::KeyRange> ranges);
  // The keys written since the last take, each once, in key order, with
  // their values now; forgets them. Errors: Closed.
  Status TakeChanges(const ChangeFn& fn);
  // The keys whose values differ between the Replica `before_id` (nullptr if
  // it no longer exists) and this one, of one state line (after a catch-up:
  // before, the state it left; this, the one it adopted), with this one's
  // values. After AdoptInPlace the state before is gone: its changes, kept
  // by the adoption, are given once. Errors: Closed, InvalidArgument (no
  // such Replica; different page sizes).
  Status DiffFrom(std::uint32_t before_id, const Replica* before, const ChangeFn& fn);

  // --- Snapshot files --------------------------------------------------------

  // Starts exporting the committed state as a snapshot file; its size in
  // bytes. Errors: Busy (uncommitted changes; a transaction or an export is
  // open), Closed.
  Result<std::uint64_t> BeginExport(std::uint64_t now_unix_ms);
  // The next bytes of the file into `out`; their count (0: done). Errors:
  // Busy (the state changed since BeginExport), Closed (no export).
  Result<std::size_t> ReadExport(std::span<std::uint8_t> out);
  void EndExport() { exporting_.reset(); }
  // Makes the verified import this Replica's state, every page to be written
  // by the next commit (which replaces the stored state atomically, on top of
  // the stored version); the import is left empty. Errors: InvalidArgument
  // (not verified; another page size), Busy (a transaction, an export or a
  // commit is in flight), Closed.
  Status AdoptImport(Import& import, bool keep_journal = false);

  // --- Sync (docs/sync.md; sync.cc) ------------------------------------------
  // A synced store keeps its journal in its own state, under keys starting
  // with 0xFF (kSyncMeta, kSyncMutationPrefix, kSyncMarkPrefix): the meta,
  // the pending mutations, and a write mark per key local work changed. Its
  // own put and delete (in_txn = false) are journaled as keepstate.put and
  // keepstate.delete in the transaction that writes; mutator calls are
  // journaled by Journal before they start; the engine marks every write
  // (Store::SetWriteMarks). Reads, scans and changes never show 0xFF keys.

  // Whether the state is synced (it holds kSyncMeta).
  bool synced() const { return synced_; }
  // Makes the state synced for client `client`: writes the meta and
  // journals a keepstate.put of every key it holds, so what was stored before
  // sync reaches the server too. Errors: Conflict (synced already, as
  // another client), InvalidArgument (client id), Busy, Closed, OutOfSpace.
  Status SyncInit(std::string_view client);
  // The meta. Errors: NotFound (not synced), Closed.
  Result<SyncMeta> SyncState() const;
  // Appends mutation (name, args) to the journal; its id. Errors: Unsupported
  // (not synced), Busy (a transaction is open), OutOfSpace, Closed.
  Result<std::uint64_t> Journal(std::string_view name, std::span<const std::uint8_t> args);
  // fn(id, name, args) for each journaled mutation above `after`, ascending;
  // fn returns false to stop. Errors: Closed, Corruption (a record that does not decode).
  Status SyncPending(std::uint64_t after,
                     const std::function<bool(std::uint64_t, std::string_view, std::span<const std::uint8_t>)>& fn) const;
  // fn(key) for each key with a write mark, ascending. Errors: Closed.
  Status SyncMarked(const std::function<void(std::string_view)>& fn) const;
  // Adopts a pull (docs/sync.md): applies `entries` (the server's values at
  // `version`; nullopt: absent) unmarked, drops every write mark and the
  // journaled mutations up to `last_mutation_id`, and records both in the
  // meta, in one transaction. Errors: Unsupported (not synced), Busy,
  // InvalidArgument (a key or value size), OutOfSpace (nothing applied), Closed.
  Status ApplyPull(std::uint64_t version, std::uint64_t last_mutation_id,
                   std::span<const std::pair<std::string_view, std::optional<std::string_view>>> entries);

  // --- Committing ------------------------------------------------------------

  // Step 1: captures the dirty pages into the plan in flight. Errors: Busy (a
  // commit is in flight, or a transaction is open), NotFound (nothing to
  // commit), Closed, as Persister::Capture.
  Status Capture(std::uint64_t now_unix_ms);
  // The batch the caller writes atomically for the plan in flight (nullopt:
  // none); its spans stay valid until CommitDone.
  std::optional<persistence::WriteBatch> batch() const;
  // Step 2, inside the atomic write: StoreSession::CheckHead against the
  // stored head (nullopt: none). Errors: Conflict, Unsupported, Closed (no
  // commit in flight).
  Status CheckHead(persistence::HeadBytes stored, double* stored_version) const;
  // Step 3: the write's outcome (ok: the plan's version is committed; else
  // the captured pages are dirty again). Errors: Closed (no commit in flight).
  Status CommitDone(const Status& outcome);
  // Capture + records.Apply(batch()) + CommitDone, for native callers.
  Status Commit(persistence::RecordStore& records, std::uint64_t now_unix_ms);
  // For native callers: Load every record of `records` (packs by key), then
  // Open (or OpenFrom base), and AddPack from `records` until opened. An
  // in-place open then waits for AdoptInPlace. Errors: as Open, and the
  // store's read errors.
  Result<persistence::OpenReport> Restore(persistence::RecordStore& records, Replica* base = nullptr,
                                          bool in_place = false);

 private:
  Result<OpenProgress> Continue();
  // Ok if reads and writes can go to the store (in_txn: to the open
  // transaction); else Closed.
  Status Target(bool in_txn) const;

  std::uint32_t id_;
  persistence::StoreSession session_;
  std::unique_ptr<engine::Store> store_;  // set once opened
  std::optional<engine::Txn> txn_;
  bool changed_ = false;
  // Opened from another Replica (OpenFrom): its id, the pages its state lent
  // (until opened) and the pages read instead.
  std::uint32_t base_id_ = 0;
  std::optional<persistence::RestoreBase> base_;
  std::optional<std::vector<std::uint32_t>> read_pages_;
  // In place: the staged pages, until AdoptInPlace applies them to the
  // base's arena; then the changes it made to the watched keys, for DiffFrom.
  std::vector<std::uint8_t> staged_;
  std::uint32_t staged_page_count_ = 0;
  std::optional<std::vector<std::pair<std::string, std::optional<std::string>>>> in_place_changes_;
  std::optional<persistence::SnapshotWriter> exporting_;  // at most one
  bool synced_ = false;

  // synced_ and the store's write marks from the state (after every open,
  // adoption and SyncInit).
  void RefreshSync();
  // A put (value) or delete (nullopt) of a synced store, journaled with it.
  Status WriteSynced(std::string_view key, std::optional<std::string_view> value);
};

// The head check for writes no Replica captured (a stashed commit, a copy
// rewriting the store): persistence::CheckStoredHead(expected, stored), with
// the stored head's version (StoredHeadVersion: 0 none, -1 undecodable) in
// *stored_version. Errors: Conflict, Unsupported.
Status CheckHead(persistence::HeadBytes expected, persistence::HeadBytes stored, double* stored_version);
// The version a head record claims, 0 if the bytes are not one
// (persistence::ClaimedHeadVersion).
std::uint64_t HeadVersion(std::span<const std::uint8_t> bytes);

// How mutator calls (keepstate::sdk) reach their store: through `find`, the
// host's lookup of Replicas by id (nullptr: unknown), so that a call whose
// Replica was closed or reloaded meanwhile gets Closed.
class ReplicaHost final : public sdk::StoreHost {
 public:
  explicit ReplicaHost(std::function<Replica*(std::uint32_t id)> find) : find_(std::move(find)) {}
  Result<engine::Store*> Find(std::uint32_t id) override;
  void Changed(std::uint32_t id) override;

 private:
  std::function<Replica*(std::uint32_t)> find_;
};

}  // namespace keepstate::replica
