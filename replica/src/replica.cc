// Replica and Import: see replica.h.
//
// The rules of one in-memory state live here, not in the bindings: which
// store a catch-up may take pages from, when an in-place catch-up may be
// adopted (the base clean and idle), which pages a diff compares, how an
// imported state is reserved over the pages of the state it replaces, and
// when a write marks the state dirty (a transaction's writes count at its
// end, and only if it wrote).
#include "keepstate/replica/replica.h"

#include <algorithm>
#include <limits>

namespace keepstate::replica {
namespace {

using engine::Arena;
using engine::PageId;
using engine::Store;

// Packs an open names after the one it needs: all of them (a version lists
// at most about PersisterOptions::max_packs), so that IndexedDB can issue
// every read while its transaction is active (idb.ts).
constexpr std::size_t kPacksReadAhead = 1024;

std::uint32_t g_next_id = 1;

Status NotOpen() { return Status::Closed("the store is not open"); }


}  // namespace

// --- Import ------------------------------------------------------------------

Import::Import(std::optional<std::uint64_t> file_size) {
  persistence::SnapshotReaderOptions options;
  if (file_size) options.file_size = *file_size;
  reader_.emplace(options);
}
Import::~Import() = default;
Import::Import(Import&&) noexcept = default;
Import& Import::operator=(Import&&) noexcept = default;

Status Import::Add(std::span<const std::uint8_t> bytes) {
  if (!reader_) return Status::InvalidArgument("the import was finished");
  return reader_->Add(bytes);
}

Status Import::Finish() {
  if (!reader_) return Status::InvalidArgument("the import was finished");
  Result<persistence::ImportedSnapshot> done = std::move(*reader_).Finish();
  reader_.reset();
  if (!done.ok()) return done.status();
  done_.emplace(std::move(*done));
  return Status::Ok();
}

// --- Replica: opening --------------------------------------------------------

Replica::Replica(persistence::PersisterOptions options) : id_(g_next_id++), session_(options) {}
Replica::~Replica() = default;

persistence::PersisterOptions Replica::OptionsFor(std::uint32_t page_size, std::uint32_t retain,
                                                  std::uint64_t writer_id, bool open_empty_if_damaged) {
  persistence::PersisterOptions options;  // 0 keeps the defaults
  if (page_size != 0) options.page_size = page_size;
  if (retain != 0) options.retain_versions = retain;
  options.writer_id = writer_id;
  if (open_empty_if_damaged) options.on_all_damaged = persistence::OnAllDamaged::kOpenEmpty;
  return options;
}

Status Replica::Load(RecordKind kind, std::string_view key, std::span<const std::uint8_t> bytes) {
  return session_.Load(kind, key, bytes);
}

Status Replica::LoadUnread(RecordKind kind, std::string_view key) { return session_.LoadUnread(kind, key); }

Result<OpenProgress> Replica::Open() {
  KEEPSTATE_RETURN_IF_ERROR(session_.BeginOpen());
  return Continue();
}

Result<OpenProgress> Replica::OpenFrom(Replica& base, bool in_place) {
  if (!base.open()) return NotOpen();
  Replica* from = &base;
  base_id_ = base.id();
  base_.emplace(persistence::RestoreBase{
      &from->store_->arena(),
      [from](std::uint32_t page, const persistence::Hash128& hash) {
        return from->session_.open() && from->session_.persister().Holds(from->store_->arena(), page, hash);
      },
      in_place, &from->session_.manifests()});
  KEEPSTATE_RETURN_IF_ERROR(session_.BeginOpen(&*base_));
  return Continue();
}

Result<OpenProgress> Replica::AddPack(std::optional<std::span<const std::uint8_t>> pack) {
  if (!session_.needed()) return Status::Closed("no pack was asked for");
  session_.AddPack(pack);
  return Continue();
}

// After Open or a fed pack: the next pack, or the open finished.
Result<OpenProgress> Replica::Continue() {
  OpenProgress progress;
  if (std::optional<PackId> id = session_.needed()) {
    progress.need = *id;
    progress.ahead = session_.needed_ahead(kPacksReadAhead);
    progress.bytes = session_.needed_bytes();
    return progress;
  }
  persistence::OpenReport& report = progress.report;
  KEEPSTATE_ASSIGN_OR_RETURN(Arena arena, session_.FinishOpen(&report));
  base_.reset();
  if (report.in_place) {
    // No store yet: AdoptInPlace makes one of the base's arena.
    read_pages_ = std::move(report.read_pages);
    staged_ = std::move(report.staged);
    staged_page_count_ = report.page_count;
    return progress;
  }
  // A restored arena is verified as a tree; a fresh one is empty. A state
  // caught up from an open one (OpenFrom) was verified page by page: the
  // pages read from packs by their hashes, the others are that state's own,
  // verified when it opened.
  const bool verify = !report.fresh_line && !report.read_pages;
  KEEPSTATE_ASSIGN_OR_RETURN(store_, Store::FromArena(std::move(arena), verify));
  read_pages_ = std::move(report.read_pages);
  RefreshSync();
  return progress;
}

Status Replica::AdoptInPlace(Replica& base) {
  if (!staged() || base.id() != base_id_) return Status::InvalidArgument("not an in-place open");
  if (!base.open()) return NotOpen();
  if (base.dirty() || base.txn_ || base.exporting_ || !base.store_->arena().DirtyPages().empty()) {
    return Status::Busy("the state changed while it was catching up");
  }
  Store& before = *base.store_;
  const std::vector<PageId>& pages = *read_pages_;
  const engine::InPlaceDiff diff =
      engine::InPlaceDiff::Prepare(before, before.changes(), staged_page_count_, pages, staged_.data());
  KEEPSTATE_RETURN_IF_ERROR(before.arena().ApplyPages(staged_page_count_, pages, staged_.data()));
  // The tree's shape changed under its caches: a Store made anew over the same arena.
  std::vector<engine::KeyRange> ranges = before.changes().ranges();
  Result<std::unique_ptr<Store>> store = Store::FromArena(std::move(before.arena()), /*verify=*/false);
  base.store_.reset();
  KEEPSTATE_RETURN_IF_ERROR(store.status());
  store_ = std::move(*store);
  store_->changes().Watch(std::move(ranges));
  RefreshSync();
  staged_ = {};
  if (store_->changes().enabled()) {
    in_place_changes_.emplace();
    diff.Finish(*store_, store_->changes(), [&](std::string_view k, std::optional<std::string_view> v) {
      in_place_changes_->emplace_back(std::string(k), v ? std::optional<std::string>(*v) : std::nullopt);
    });
  }
  return Status::Ok();
}

Result<std::string> Replica::ReadManifestsFrom() const {
  if (!open() || !session_.open()) return NotOpen();
  return persistence::ManifestKey(session_.ReadManifestsFrom());
}

Result<persistence::OpenReport> Replica::Restore(persistence::RecordStore& records, Replica* base, bool in_place) {
  for (RecordKind kind : {RecordKind::kHead, RecordKind::kManifest, RecordKind::kPack}) {
    KEEPSTATE_ASSIGN_OR_RETURN(std::vector<std::string> keys, records.List(kind));
    for (const std::string& key : keys) {
      std::vector<std::uint8_t> bytes;
      if (kind != RecordKind::kPack) {
        KEEPSTATE_ASSIGN_OR_RETURN(bytes, records.Get(kind, key));
      }
      KEEPSTATE_RETURN_IF_ERROR(Load(kind, key, bytes));
    }
  }
  KEEPSTATE_ASSIGN_OR_RETURN(OpenProgress progress, base != nullptr ? OpenFrom(*base, in_place) : Open());
  std::vector<std::uint8_t> pack;
  while (progress.need) {
    Status read = records.GetInto(RecordKind::kPack, persistence::PackKey(*progress.need), pack);
    if (!read.ok() && !read.IsNotFound()) return read;
    KEEPSTATE_ASSIGN_OR_RETURN(progress, AddPack(read.ok() ? std::optional(std::span<const std::uint8_t>(pack))
                                                           : std::nullopt));
  }
  return std::move(progress.report);
}

// --- Reads and writes --------------------------------------------------------

Status Replica::Target(bool in_txn) const {
  if (!open()) return NotOpen();
  if (in_txn && !txn_) return Status::Closed("no transaction is open");
  return Status::Ok();
}

Status Replica::Get(bool in_txn, std::string_view key, std::string* value) const {
  KEEPSTATE_RETURN_IF_ERROR(engine::ValidateKey(key));
  KEEPSTATE_RETURN_IF_ERROR(Target(in_txn));
  return in_txn ? txn_->Get(key, value) : store_->Get(key, value);
}

Status Replica::Has(bool in_txn, std::string_view key) const {
  KEEPSTATE_RETURN_IF_ERROR(engine::ValidateKey(key));
  KEEPSTATE_RETURN_IF_ERROR(Target(in_txn));
  const bool found = in_txn ? txn_->Contains(key) : store_->Contains(key);
  return found ? Status::Ok() : Status::NotFound("no such key");
}

Status Replica::Put(bool in_txn, std::string_view key, std::string_view value) {
  KEEPSTATE_RETURN_IF_ERROR(Target(in_txn));
  if (in_txn) return txn_->Put(key, value);  // a transaction's writes count at its end
  if (synced_) return WriteSynced(key, value);
  KEEPSTATE_RETURN_IF_ERROR(store_->Put(key, value));
  changed_ = true;
  return Status::Ok();
}

Status Replica::Delete(bool in_txn, std::string_view key) {
  KEEPSTATE_RETURN_IF_ERROR(engine::ValidateKey(key));
  KEEPSTATE_RETURN_IF_ERROR(Target(in_txn));
  if (!in_txn && synced_) {
    if (!store_->Contains(key)) return Status::NotFound("no such key");
    return WriteSynced(key, std::nullopt);
  }
  KEEPSTATE_ASSIGN_OR_RETURN(bool existed, in_txn ? txn_->Delete(key) : store_->Delete(key));
  if (!existed) return Status::NotFound("no such key");
  if (!in_txn) changed_ = true;
  return Status::Ok();
}

Status Replica::Scan(bool in_txn, const engine::ScanOptions& options, const EntryFn& fn) const {
  KEEPSTATE_RETURN_IF_ERROR(Target(in_txn));
  // Reserved keys (0xFF...: a synced store's journal) sort after every other
  // key: a forward scan ends at the first, a reverse one steps over them.
  const EntryFn app_keys = [&](std::string_view k, std::string_view v) {
    if (Reserved(k)) return options.reverse;
    return fn(k, v);
  };
  if (in_txn) {
    txn_->Scan(options, app_keys);
  } else {
    store_->Scan(options, app_keys);
  }
  return Status::Ok();
}

Status Replica::Begin() {
  if (!open()) return NotOpen();
  KEEPSTATE_ASSIGN_OR_RETURN(engine::Txn txn, store_->BeginWrite());
  txn_.emplace(std::move(txn));
  return Status::Ok();
}

Status Replica::End(bool commit) {
  KEEPSTATE_RETURN_IF_ERROR(Target(/*in_txn=*/true));
  const bool wrote = txn_->pending_writes() > 0;
  const Arena& arena = store_->arena();
  const std::uint64_t dirty_before = arena.dirty().Count(), pages_before = arena.page_count();
  Status result;
  if (commit) {
    result = txn_->Commit();
  } else {
    txn_->Abort();
  }
  txn_.reset();
  // A commit that wrote nothing can still change pages: the engine returns the free pages at
  // the arena's end after every committed write transaction (an import's freed tail, say).
  // (A fresh store's pages are dirty from the start: only a change counts.)
  if (commit && result.ok() && (wrote || arena.dirty().Count() != dirty_before || arena.page_count() != pages_before)) {
    changed_ = true;
  }
  return result;
}

std::uint64_t Replica::schema_version(bool in_txn) const {
  if (!Target(in_txn).ok()) return 0;
  return in_txn ? txn_->schema_version() : store_->schema_version();
}

Status Replica::SetSchemaVersion(std::uint64_t version) {
  KEEPSTATE_RETURN_IF_ERROR(Target(/*in_txn=*/true));
  return txn_->SetSchemaVersion(version);
}

Status Replica::RunMigrations(std::uint64_t from, std::uint64_t to) {
  KEEPSTATE_RETURN_IF_ERROR(Target(/*in_txn=*/true));
  return sdk::RunMigrations(*txn_, from, to);
}

// --- Changes -----------------------------------------------------------------

Status Replica::Watch(std::vector<engine::KeyRange> ranges) {
  if (!open()) return NotOpen();
  store_->changes().Watch(std::move(ranges));
  return Status::Ok();
}

Status Replica::TakeChanges(const ChangeFn& fn) {
  if (!open()) return NotOpen();
  std::vector<std::string> keys;
  store_->changes().ForEach([&](std::string_view k) { keys.emplace_back(k); });
  store_->changes().Clear();
  std::sort(keys.begin(), keys.end());  // std::string orders as unsigned bytes, as keys do
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::string value;
  for (const std::string& k : keys) {
    if (Reserved(k)) continue;
    const bool found = store_->tree().Get(k, &value).ok();
    fn(k, found ? std::optional<std::string_view>(value) : std::nullopt);
  }
  return Status::Ok();
}

Status Replica::DiffFrom(std::uint32_t before_id, const Replica* before, const ChangeFn& fn) {
  // After an in-place catch-up the state before is gone: its changes were kept.
  if (open() && base_id_ == before_id && in_place_changes_) {
    for (const auto& [k, v] : *in_place_changes_) {
      if (!Reserved(k)) fn(k, v ? std::optional<std::string_view>(*v) : std::nullopt);
    }
    in_place_changes_.reset();
    return Status::Ok();
  }
  if (before == nullptr) return Status::InvalidArgument("no store with handle " + std::to_string(before_id));
  if (!before->open() || !open()) return NotOpen();
  const Store& x = *before->store_;
  const Store& y = *store_;
  if (x.arena().page_size() != y.arena().page_size()) {
    return Status::InvalidArgument("the two stores have different page sizes");
  }
  // The pages that may differ: for a Replica opened from `before`, the ones it
  // read instead of taking them, and both sides' dirty pages (the pending work
  // before, its replay after) and those only one side has; else a comparison.
  std::vector<PageId> pages;
  if (base_id_ == before_id && read_pages_) {
    pages = *read_pages_;
    for (const Arena* arena : {&x.arena(), &y.arena()}) {
      const std::vector<PageId> dirty = arena->DirtyPages();
      pages.insert(pages.end(), dirty.begin(), dirty.end());
    }
    const std::uint32_t lo = std::min(x.arena().page_count(), y.arena().page_count());
    for (std::uint32_t id = lo; id < std::max(x.arena().page_count(), y.arena().page_count()); ++id) pages.push_back(id);
    std::sort(pages.begin(), pages.end());
    pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  } else {
    pages = engine::DifferingPages(x.arena(), y.arena());
  }
  engine::DiffStates(x, y, pages, [&](std::string_view k, std::optional<std::string_view> v) {
    if (!Reserved(k)) fn(k, v);
  });
  return Status::Ok();
}

// --- Snapshot files ----------------------------------------------------------

Result<std::uint64_t> Replica::BeginExport(std::uint64_t now_unix_ms) {
  if (!open()) return NotOpen();
  if (txn_) return Status::Busy("a transaction is open");
  if (exporting_) return Status::Busy("an export is already running");
  if (dirty()) return Status::Busy("the store has uncommitted changes: an export writes the committed state");
  KEEPSTATE_ASSIGN_OR_RETURN(persistence::SnapshotWriter w,
                             persistence::SnapshotWriter::Begin(store_->arena(), {session_.version(), now_unix_ms,
                                                                                   /*never_committed=*/session_.version() == 0}));
  exporting_.emplace(std::move(w));
  return exporting_->size();
}

Result<std::size_t> Replica::ReadExport(std::span<std::uint8_t> out) {
  if (!open()) return NotOpen();
  if (!exporting_) return Status::Closed("no export is running");
  return exporting_->Read(out);
}

Status Replica::AdoptImport(Import& import, bool keep_journal) {
  if (!import.verified()) return Status::InvalidArgument("the import is not verified");
  if (!open()) return NotOpen();
  if (txn_ || exporting_ || session_.in_flight()) {
    return Status::Busy("the store is busy (a transaction, an export or a commit)");
  }
  Arena& arena = import.done_->store->arena();
  if (arena.page_size() != store_->arena().page_size()) {
    return Status::InvalidArgument("the file's page size is " + std::to_string(arena.page_size()) + ", the store's " +
                                   std::to_string(store_->arena().page_size()));
  }
  // The state may be smaller than the one it replaces, whose page count the
  // committed versions have: the pages beyond go to its free list.
  const std::uint32_t have = arena.page_count(), need = store_->arena().page_count();
  if (have < need) {
    // Allocate takes free pages first: reserve for those too, then free everything taken.
    KEEPSTATE_RETURN_IF_ERROR(arena.Reserve(arena.free_count() + (need - have)));
    std::vector<PageId> taken;
    while (arena.page_count() < need) taken.push_back(arena.Allocate().value());
    for (PageId p : taken) arena.Free(p);
  }
  std::vector<PageId> all(arena.page_count());
  for (std::uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  arena.MarkDirty(all);
  // A synced store adopting its server's state keeps its journal (the
  // pending mutations and the meta; not the marks: the state is the server's).
  std::vector<std::pair<std::string, std::string>> journal;
  if (keep_journal && synced_) {
    engine::ScanOptions reserved;
    reserved.start = "\xFF";
    store_->Scan(reserved, [&](std::string_view k, std::string_view v) {
      if (!k.starts_with(kSyncMarkPrefix)) journal.emplace_back(k, v);
      return true;
    });
  }
  std::unique_ptr<engine::Store> old = std::move(store_);
  store_ = std::move(import.done_->store);
  import.done_.reset();
  changed_ = true;
  // The watchers keep watching, and hear of every key the new state changed
  // (and of what was recorded and not taken yet).
  if (old->changes().enabled()) {
    engine::ChangeLog& log = store_->changes();
    log.Watch(old->changes().ranges());
    old->changes().ForEach([&](std::string_view k) { log.Record(k); });
    const std::vector<PageId> pages = engine::DifferingPages(old->arena(), store_->arena());
    engine::DiffStates(*old, *store_, pages, [&](std::string_view k, std::optional<std::string_view>) { log.Record(k); });
  }
  if (keep_journal && synced_) {
    store_->SetWriteMarks({});
    KEEPSTATE_ASSIGN_OR_RETURN(engine::Txn txn, store_->BeginWrite());
    for (const auto& [k, v] : journal) KEEPSTATE_RETURN_IF_ERROR(txn.Put(k, v));
    KEEPSTATE_RETURN_IF_ERROR(txn.Commit());
  }
  RefreshSync();
  return Status::Ok();
}

// --- Committing --------------------------------------------------------------

Status Replica::Capture(std::uint64_t now_unix_ms) {
  if (!open()) return NotOpen();
  if (txn_) return Status::Busy("a transaction is open");
  if (session_.in_flight()) return Status::Busy("a commit is already in flight");
  if (!changed_) return Status::NotFound("nothing to commit");
  KEEPSTATE_RETURN_IF_ERROR(session_.Capture(store_->arena(), now_unix_ms));
  changed_ = false;
  return Status::Ok();
}

std::optional<persistence::WriteBatch> Replica::batch() const {
  if (!session_.plan()) return std::nullopt;
  return session_.batch();
}

Status Replica::CheckHead(persistence::HeadBytes stored, double* stored_version) const {
  return session_.CheckHead(stored, stored_version);
}

Status Replica::CommitDone(const Status& outcome) {
  if (!open()) return NotOpen();
  if (!session_.in_flight()) return Status::Closed("no commit is in flight");
  session_.CommitDone(outcome, store_->arena());
  if (!outcome.ok()) changed_ = true;
  return Status::Ok();
}

Status Replica::Commit(persistence::RecordStore& records, std::uint64_t now_unix_ms) {
  KEEPSTATE_RETURN_IF_ERROR(Capture(now_unix_ms));
  const Status applied = records.Apply(*batch());
  KEEPSTATE_RETURN_IF_ERROR(CommitDone(applied));
  return applied;
}

// --- Free functions ----------------------------------------------------------

Status CheckHead(persistence::HeadBytes expected, persistence::HeadBytes stored, double* stored_version) {
  *stored_version = persistence::StoredHeadVersion(stored);
  return persistence::CheckStoredHead(expected, stored);
}

std::uint64_t HeadVersion(std::span<const std::uint8_t> bytes) { return persistence::ClaimedHeadVersion(bytes); }

Result<engine::Store*> ReplicaHost::Find(std::uint32_t id) {
  Replica* r = find_(id);
  if (r == nullptr || !r->open()) return Status::Closed("the store of this call was closed or reloaded");
  return r->store();
}

void ReplicaHost::Changed(std::uint32_t id) {
  if (Replica* r = find_(id)) r->MarkChanged();
}

}  // namespace keepstate::replica
