// exports.cc: the C ABI of the keepstate wasm module (abi.h lists the
// functions, their conventions and the wire layouts). Handles, buffers and
// thin exports only: the rules of opening and committing are the
// persistence layer's StoreSession, the store is the engine's.
//
// A "store" here is what one openStore() in JS owns: the engine Store, the
// StoreSession that opens and commits it, and the write transaction, if any.
// JS does all the I/O; this file only ever sees bytes.
//
// Invariants:
//  - `changed` is true iff a write landed since the last capture, or a
//    captured commit failed; dirty() is changed || a commit is in flight.
//
// Thread safety: none; wasm runs on one thread and JS calls in one at a time.
#include <emscripten/emscripten.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "abi.h"
#include "keepstate/engine/store.h"
#include "keepstate/persistence/session.h"
#include "keepstate/persistence/snapshot_file.h"
#include "keepstate/scheduler/c_api.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/sdk/module.h"
#include "keepstate/status.h"
#include "wire.h"

namespace {

using keepstate::Code;
using keepstate::Result;
using keepstate::Status;
using keepstate::engine::ScanOptions;
using keepstate::engine::Store;
using keepstate::engine::Txn;
using keepstate::persistence::PackId;
using keepstate::persistence::RecordKind;
using keepstate::persistence::StoreSession;
using keepstate::wire::Address;
namespace wire = keepstate::wire;
namespace sched = keepstate::scheduler;

struct OpenStore {
  explicit OpenStore(keepstate::persistence::PersisterOptions options) : session(options) {}
  StoreSession session;
  std::unique_ptr<Store> store;  // set once the session opened
  std::optional<Txn> txn;
  bool changed = false;
  // Opened from another open store of the same name (keepstate_store_open_from):
  // its handle, the pages its state lent (until opened) and the pages read instead.
  std::uint32_t base_handle = 0;
  std::optional<keepstate::persistence::RestoreBase> base;
  std::optional<std::vector<std::uint32_t>> read_pages;
  // Opened in place (open_from with in_place): the staged pages of the state,
  // until adopt_in_place applies them to the base's arena; then the changes
  // the catch-up made to the watched keys, for keepstate_store_diff.
  std::vector<std::uint8_t> staged;
  std::uint32_t staged_page_count = 0;
  std::optional<std::string> in_place_changes;
  // The snapshot file being exported (keepstate_export_*), at most one.
  std::optional<keepstate::persistence::SnapshotWriter> exporting;

  bool dirty() const { return changed || session.in_flight(); }
};

std::string g_error;
std::string g_out;
// The scratch buffer (keepstate_scratch): malloc'd, so a failed allocation is
// a null answer to JS, never an abort.
std::uint8_t* g_scratch = nullptr;
std::size_t g_scratch_size = 0;
std::map<std::uint32_t, std::unique_ptr<OpenStore>> g_stores;
std::uint32_t g_next_handle = 1;
// Snapshot files being imported: read and verified, then verified whole, then adopted.
struct Import {
  std::optional<keepstate::persistence::SnapshotReader> reader;
  std::optional<keepstate::persistence::ImportedSnapshot> done;
};
std::map<std::uint32_t, Import> g_imports;
std::uint32_t g_next_import = 1;
sched::Scheduler g_scheduler;

Result<OpenStore*> Known(std::uint32_t handle) {
  auto it = g_stores.find(handle);
  if (it == g_stores.end()) return Status::InvalidArgument("no store with handle " + std::to_string(handle));
  return it->second.get();
}

// The store for a read, write or commit: InvalidArgument for an unknown
// handle, Closed while it is not open.
Result<OpenStore*> Usable(std::uint32_t handle) {
  KEEPSTATE_ASSIGN_OR_RETURN(OpenStore * s, Known(handle));
  if (!s->store) return Status::Closed("the store is not open");
  return s;
}

// Mutator calls (keepstate::sdk) reach their store through the handle table,
// so a call whose store was closed or reloaded meanwhile gets Closed.
class OpenStoreHost final : public keepstate::sdk::StoreHost {
 public:
  Result<Store*> Find(std::uint32_t handle) override {
    Result<OpenStore*> s = Usable(handle);
    if (!s.ok()) return Status::Closed("the store of this call was closed or reloaded");
    return (*s)->store.get();
  }
  void Changed(std::uint32_t handle) override {
    if (Result<OpenStore*> s = Known(handle); s.ok()) (*s)->changed = true;
  }
};
OpenStoreHost g_store_host;
keepstate::sdk::CallQueue g_calls(&g_scheduler, &g_store_host);

std::int32_t Fail(const Status& s) {
  g_error = s.message();
  return static_cast<std::int32_t>(s.code());
}
std::int32_t Done(const Status& s) { return s.ok() ? 0 : Fail(s); }

std::string_view View(const std::uint8_t* p, std::uint32_t n) { return {reinterpret_cast<const char*>(p), n}; }

// After open or a fed pack: ask JS for the next pack, or open the store and
// write the report (see keepstate_store_open).
// Packs a restore names to JS after the one it needs: all of them (a version
// lists at most about PersisterOptions::max_packs), so that IndexedDB can issue
// every read while its transaction is active (idb.ts); JS takes the bytes of
// two at a time (backend.ts feedPacks).
constexpr std::size_t kPacksReadAhead = 1024;

std::int32_t ContinueOpen(OpenStore* s) {
  if (std::optional<PackId> id = s->session.needed()) {
    wire::EncodePackRequest(*id, s->session.needed_ahead(kPacksReadAhead), &g_out);
    return 0;
  }
  keepstate::persistence::OpenReport report;
  Result<keepstate::engine::Arena> arena = s->session.FinishOpen(&report);
  if (!arena.ok()) return Fail(arena.status());
  if (report.in_place) {
    // No store yet: keepstate_store_adopt_in_place makes one of the base's arena.
    s->base.reset();
    s->read_pages = std::move(report.read_pages);
    s->staged = std::move(report.staged);
    s->staged_page_count = report.page_count;
    wire::EncodeOpenReport(report, &g_out);
    return 0;
  }
  // A restored arena is verified as a tree; a fresh one is empty.
  // A state caught up from an open one (open_from) was verified page by page: the pages
  // read from packs by their hashes, the others are that state's own, verified when it opened.
  const bool verify = !report.fresh_line && !report.read_pages;
  Result<std::unique_ptr<Store>> store = Store::FromArena(std::move(*arena), verify);
  if (!store.ok()) return Fail(store.status());
  s->store = std::move(*store);
  s->base.reset();
  s->read_pages = std::move(report.read_pages);
  wire::EncodeOpenReport(report, &g_out);
  return 0;
}

// Runs `op(store)` if the lookup found it, else fails with the lookup's error.
template <typename Op>
std::int32_t With(Result<OpenStore*> s, Op op) {
  return s.ok() ? op(**s) : Fail(s.status());
}

// Runs `op(target, store)` on the open transaction (in_txn) or on the store
// itself: Txn and Store read and write alike. Errors: as Usable; closed (in_txn
// and no transaction is open).
template <typename Op>
std::int32_t OnTarget(std::uint32_t handle, std::int32_t in_txn, Op op) {
  return With(Usable(handle), [&](OpenStore& s) {
    if (!in_txn) return op(*s.store, s);
    return s.txn ? op(*s.txn, s) : Fail(Status::Closed("no transaction is open"));
  });
}

std::int32_t Found(bool found) { return found ? 0 : static_cast<std::int32_t>(Code::kNotFound); }

}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_error_ptr() { return Address(g_error.data()); }
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_error_len() { return static_cast<std::uint32_t>(g_error.size()); }
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_out_ptr() { return Address(g_out.data()); }
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_out_len() { return static_cast<std::uint32_t>(g_out.size()); }

// A buffer of at least `size` bytes (its old contents are not kept). A buffer
// over 1 MiB asked for a quarter of its size or less is given back and made
// anew, so one big value does not keep its memory. Returns 0 if memory cannot
// grow (the old buffer is gone then too).
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_scratch(std::uint32_t size) {
  constexpr std::size_t kKeepBelow = 1u << 20;
  const bool shrink = g_scratch_size > kKeepBelow && size <= g_scratch_size / 4;
  if (g_scratch != nullptr && size <= g_scratch_size && !shrink) return Address(g_scratch);
  std::free(g_scratch);  // old one freed first
  const std::size_t want = std::max<std::size_t>(size, 4096);
  g_scratch = static_cast<std::uint8_t*>(std::malloc(want));
  g_scratch_size = g_scratch == nullptr ? 0 : want;
  return Address(g_scratch);
}

// A new, not yet opened store. page_size and retain: 0 for the defaults
// (page_size only matters for a new store). writer_id identifies this writer
// (tab) in pack keys; JS passes a random 53-bit number. Returns the handle.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_store_new(std::uint32_t page_size, std::uint32_t retain,
                                                       double writer_id) {
  keepstate::persistence::PersisterOptions options;  // 0 keeps the C++ defaults
  if (page_size != 0) options.page_size = page_size;
  if (retain != 0) options.retain_versions = retain;
  options.writer_id = static_cast<std::uint64_t>(writer_id);
  const std::uint32_t handle = g_next_handle++;
  g_stores.emplace(handle, std::make_unique<OpenStore>(options));
  return handle;
}

// Feeds one stored record (packs: the key only) before keepstate_store_open.
// Errors: invalid-argument (bad handle or kind), closed (opening began).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_load_record(std::uint32_t handle, std::uint32_t kind,
                                                              const std::uint8_t* key, std::uint32_t key_len,
                                                              const std::uint8_t* bytes, std::uint32_t bytes_len) {
  return With(Known(handle), [&](OpenStore& s) {
    return Done(s.session.Load(static_cast<RecordKind>(kind), View(key, key_len), {bytes, bytes_len}));
  });
}

// A record that is stored but was not read (a catch-up leaves the manifests
// below keepstate_store_read_manifests_from of its base unread). Errors: as
// keepstate_store_load_record.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_load_unread(std::uint32_t handle, std::uint32_t kind,
                                                              const std::uint8_t* key, std::uint32_t key_len) {
  return With(Known(handle), [&](OpenStore& s) {
    return Done(s.session.LoadUnread(static_cast<RecordKind>(kind), View(key, key_len)));
  });
}

// Into the output buffer: the lowest manifest key a store catching up from
// this open one (keepstate_store_open_from) must read; those below it it may
// load unread. Errors: closed (not open), invalid-argument (handle).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_read_manifests_from(std::uint32_t handle) {
  return With(Usable(handle), [](OpenStore& s) {
    if (!s.session.open()) return Fail(Status::Closed("the store is not open"));
    g_out = keepstate::persistence::ManifestKey(s.session.ReadManifestsFrom());
    return 0;
  });
}

// Starts restoring the newest verified version from the loaded records (falling
// back to older ones), or opens empty. The output buffer then holds a pack
// request, which JS answers with keepstate_store_open_pack (answering the same
// way), or the open report (JSON, wire.h); one pack at a time is staged.
// Errors: unsupported (a newer format wrote the store), invalid-argument
// (bad handle or options), quota (state too large), closed (already opening).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open(std::uint32_t handle) {
  return With(Known(handle), [](OpenStore& s) {
    Status begun = s.session.BeginOpen();
    return begun.ok() ? ContinueOpen(&s) : Fail(begun);
  });
}

// keepstate_store_open for a store catching up with a newer version of the
// state of open store `base` (same name): the pages base holds unchanged
// (clean, and committed with the same hash) are copied from it, so only the
// packs of pages that changed are asked for. REQUIRES: base stays open until
// this store has opened. Errors: as keepstate_store_open; invalid-argument
// (base unknown or not open).
//
// With in_place = 1 (base clean), nothing is copied: only the changed pages
// are staged, and the report says "inPlace"; keepstate_store_adopt_in_place
// then applies them to base's arena, which this store takes over.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open_from(std::uint32_t handle, std::uint32_t base, std::int32_t in_place) {
  Result<OpenStore*> b = Usable(base);
  if (!b.ok()) return Fail(b.status());
  return With(Known(handle), [&](OpenStore& s) {
    OpenStore* from = *b;
    s.base_handle = base;
    s.base.emplace(keepstate::persistence::RestoreBase{
        &from->store->arena(), [from](std::uint32_t page, const keepstate::persistence::Hash128& hash) {
          return from->session.open() && from->session.persister().Holds(from->store->arena(), page, hash);
        },
        in_place != 0, &from->session.manifests()});
    Status begun = s.session.BeginOpen(&*s.base);
    return begun.ok() ? ContinueOpen(&s) : Fail(begun);
  });
}

// Completes an in-place open_from: applies the staged pages to the base's
// arena, which becomes this store's (the base store is left closed: destroy
// it), and keeps what changed for the base's watched keys (keepstate_store_diff).
// Errors: busy (the base changed meanwhile: uncommitted writes, a commit, a
// transaction or an export; nothing changed, open again without in_place),
// corruption (the state the pages would make; nothing changed), closed,
// invalid-argument (not an in-place open).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_adopt_in_place(std::uint32_t handle) {
  Result<OpenStore*> n = Known(handle);
  if (!n.ok()) return Fail(n.status());
  OpenStore& s = **n;
  if (s.store || !s.read_pages || s.base_handle == 0) return Fail(Status::InvalidArgument("not an in-place open"));
  Result<OpenStore*> b = Usable(s.base_handle);
  if (!b.ok()) return Fail(b.status());
  OpenStore& base = **b;
  if (base.dirty() || base.txn || base.exporting || !base.store->arena().DirtyPages().empty()) {
    return Fail(Status::Busy("the state changed while it was catching up"));
  }
  const std::vector<std::uint32_t>& pages = *s.read_pages;
  const keepstate::engine::InPlaceDiff diff = keepstate::engine::InPlaceDiff::Prepare(
      *base.store, base.store->changes(), s.staged_page_count, pages, s.staged.data());
  Status applied = base.store->arena().ApplyPages(s.staged_page_count, pages, s.staged.data());
  if (!applied.ok()) return Fail(applied);
  // The tree's shape changed under its caches: a Store made anew over the same arena.
  std::vector<keepstate::engine::KeyRange> ranges = base.store->changes().ranges();
  Result<std::unique_ptr<Store>> store = Store::FromArena(std::move(base.store->arena()), /*verify=*/false);
  base.store.reset();
  if (!store.ok()) return Fail(store.status());
  s.store = std::move(*store);
  s.store->changes().Watch(std::move(ranges));
  s.staged = {};
  if (s.store->changes().enabled()) {
    std::string out;
    wire::BeginScan(&out);
    std::uint32_t count = 0;
    diff.Finish(*s.store, s.store->changes(), [&](std::string_view k, std::optional<std::string_view> v) {
      wire::AppendChange(k, v, &out);
      ++count;
    });
    wire::FinishScan(count, &out);
    s.in_place_changes = std::move(out);
  }
  return 0;
}

// Feeds the pack keepstate_store_open (or the previous call) asked for:
// `present` = 0 if it is not stored. Answers as keepstate_store_open.
// Errors: as keepstate_store_open; closed if no pack was asked for.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open_pack(std::uint32_t handle, const std::uint8_t* bytes,
                                                            std::uint32_t len, std::int32_t present) {
  return With(Known(handle), [&](OpenStore& s) {
    if (!s.session.needed()) return Fail(Status::Closed("no pack was asked for"));
    s.session.AddPack(present ? std::optional(std::span<const std::uint8_t>(bytes, len)) : std::nullopt);
    return ContinueOpen(&s);
  });
}

// Forgets the store (uncommitted changes are dropped; JS commits first).
EMSCRIPTEN_KEEPALIVE void keepstate_store_destroy(std::uint32_t handle) { g_stores.erase(handle); }

// The committed version the state is based on (0: none or unknown handle).
EMSCRIPTEN_KEEPALIVE double keepstate_store_version(std::uint32_t handle) {
  Result<OpenStore*> s = Known(handle);
  return s.ok() ? static_cast<double>((*s)->session.version()) : 0;
}
// 1 if there are uncommitted changes (a commit in flight included).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_dirty(std::uint32_t handle) {
  Result<OpenStore*> s = Known(handle);
  return s.ok() && (*s)->dirty() ? 1 : 0;
}

// The value of key into the output buffer. Errors: not-found,
// invalid-argument (key size, handle), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_get(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len) {
  const std::string_view k = View(key, key_len);
  if (Status v = keepstate::engine::ValidateKey(k); !v.ok()) return Fail(v);
  return OnTarget(handle, in_txn, [&](auto& t, OpenStore&) { return Done(t.Get(k, &g_out)); });
}

// 0 if key exists, not-found if not. Errors: invalid-argument, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_has(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len) {
  const std::string_view k = View(key, key_len);
  if (Status v = keepstate::engine::ValidateKey(k); !v.ok()) return Fail(v);
  return OnTarget(handle, in_txn, [&](auto& t, OpenStore&) { return Found(t.Contains(k)); });
}

// Errors: invalid-argument (key or value size), busy (a transaction is open
// and in_txn is 0), quota (memory cannot grow), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_put(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len,
                                                      const std::uint8_t* value, std::uint32_t value_len) {
  return OnTarget(handle, in_txn, [&](auto& t, OpenStore& s) {
    Status st = t.Put(View(key, key_len), View(value, value_len));
    if (st.ok() && !in_txn) s.changed = true;  // a transaction's writes count at its end
    return Done(st);
  });
}

// 0 if the key was deleted, not-found if it did not exist. Errors as put.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_delete(std::uint32_t handle, std::int32_t in_txn,
                                                         const std::uint8_t* key, std::uint32_t key_len) {
  const std::string_view k = View(key, key_len);
  if (Status v = keepstate::engine::ValidateKey(k); !v.ok()) return Fail(v);
  return OnTarget(handle, in_txn, [&](auto& t, OpenStore& s) {
    Result<bool> existed = t.Delete(k);
    if (!existed.ok()) return Fail(existed.status());
    if (*existed && !in_txn) s.changed = true;
    return Found(*existed);
  });
}

// Entries in range into the output buffer, laid out as abi.h's SCAN_*.
// Errors: closed, invalid-argument (handle).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_scan(
    std::uint32_t handle, std::int32_t in_txn, const std::uint8_t* prefix, std::uint32_t prefix_len,
    std::int32_t has_prefix, const std::uint8_t* start, std::uint32_t start_len, const std::uint8_t* end,
    std::uint32_t end_len, std::int32_t has_end, double limit, std::int32_t reverse) {
  // The arguments may point into the scratch buffer; copy before g_out grows.
  const std::string p(View(prefix, prefix_len)), b(View(start, start_len)), e(View(end, end_len));
  std::string end_storage;
  const ScanOptions o = wire::ScanFromArgs(p, has_prefix != 0, b, e, has_end != 0, limit, reverse != 0, &end_storage);
  return OnTarget(handle, in_txn, [&](auto& t, OpenStore&) {
    wire::BeginScan(&g_out);
    std::uint32_t count = 0;
    t.Scan(o, [&](std::string_view k, std::string_view v) {
      wire::AppendScanEntry(k, v, &g_out);
      ++count;
      return true;
    });
    wire::FinishScan(count, &g_out);
    return 0;
  });
}

// Opens the store's write transaction. Errors: busy (one is open), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_begin(std::uint32_t handle) {
  return With(Usable(handle), [](OpenStore& s) {
    Result<Txn> txn = s.store->BeginWrite();
    if (!txn.ok()) return Fail(txn.status());
    s.txn.emplace(std::move(*txn));
    return 0;
  });
}

// Commits (commit = 1) or aborts the open transaction. Errors: closed (none
// open), quota (memory cannot grow; nothing applied).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_end(std::uint32_t handle, std::int32_t commit) {
  return With(Usable(handle), [&](OpenStore& s) {
    if (!s.txn) return Fail(Status::Closed("no transaction is open"));
    const bool wrote = s.txn->pending_writes() > 0;
    Status result;
    if (commit) result = s.txn->Commit();
    else s.txn->Abort();
    s.txn.reset();
    if (commit && result.ok() && wrote) s.changed = true;
    return Done(result);
  });
}

// The application's schema version: the store's (in_txn = 0) or as the open
// transaction sees it (in_txn = 1); 0 for an unknown or closed store.
EMSCRIPTEN_KEEPALIVE double keepstate_store_schema_version(std::uint32_t handle, std::int32_t in_txn) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return 0;
  if (in_txn) return (*s)->txn ? static_cast<double>((*s)->txn->schema_version()) : 0;
  return static_cast<double>((*s)->store->schema_version());
}

// Sets the schema version in the open transaction (applied by its commit).
// Errors: closed (no transaction is open), invalid-argument (handle, version).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_set_schema_version(std::uint32_t handle, double version) {
  if (!(version >= 0 && version <= 9007199254740991.0) || version != static_cast<double>(static_cast<std::uint64_t>(version))) {
    return Fail(Status::InvalidArgument("a schema version is an integer from 0 to 2^53 - 1"));
  }
  return With(Usable(handle), [&](OpenStore& s) {
    if (!s.txn) return Fail(Status::Closed("no transaction is open"));
    return Done(s.txn->SetSchemaVersion(static_cast<std::uint64_t>(version)));
  });
}

// Runs the module's C++ migrations (KEEPSTATE_MIGRATION) with from < version
// <= to, in order, in the open transaction. Errors: the first migration's
// error (the caller aborts the transaction), closed (no transaction).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_run_migrations(std::uint32_t handle, double from, double to) {
  return With(Usable(handle), [&](OpenStore& s) {
    if (!s.txn) return Fail(Status::Closed("no transaction is open"));
    return Done(keepstate::sdk::RunMigrations(*s.txn, static_cast<std::uint64_t>(from), static_cast<std::uint64_t>(to)));
  });
}

// The highest schema version the module's C++ migrations reach (0: none).
EMSCRIPTEN_KEEPALIVE double keepstate_migrations_newest() {
  const auto migrations = keepstate::sdk::RegisteredMigrations();
  return migrations.empty() ? 0 : static_cast<double>(migrations.back().first);
}

// Starts exporting the store's state as a snapshot file; writes its size in
// bytes (f64) to *size_out. Errors: busy (uncommitted changes: commit first;
// a transaction or an export is open), closed, invalid-argument.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_export_begin(std::uint32_t handle, double now_ms, double* size_out) {
  return With(Usable(handle), [&](OpenStore& s) {
    if (s.txn) return Fail(Status::Busy("a transaction is open"));
    if (s.exporting) return Fail(Status::Busy("an export is already running"));
    if (s.dirty()) return Fail(Status::Busy("the store has uncommitted changes: an export writes the committed state"));
    Result<keepstate::persistence::SnapshotWriter> w = keepstate::persistence::SnapshotWriter::Begin(
        s.store->arena(), {s.session.version(), static_cast<std::uint64_t>(now_ms)});
    if (!w.ok()) return Fail(w.status());
    *size_out = static_cast<double>(w->size());
    s.exporting.emplace(std::move(*w));
    return 0;
  });
}

// The next bytes of the file into buffer (at most capacity); their count to
// *n_out (0: done). Errors: busy (the state changed since export_begin),
// closed (no export), invalid-argument.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_export_read(std::uint32_t handle, std::uint8_t* buffer,
                                                       std::uint32_t capacity, std::uint32_t* n_out) {
  return With(Usable(handle), [&](OpenStore& s) {
    if (!s.exporting) return Fail(Status::Closed("no export is running"));
    Result<std::size_t> n = s.exporting->Read({buffer, capacity});
    if (!n.ok()) return Fail(n.status());
    *n_out = static_cast<std::uint32_t>(*n);
    return 0;
  });
}

EMSCRIPTEN_KEEPALIVE void keepstate_export_end(std::uint32_t handle) {
  if (Result<OpenStore*> s = Known(handle); s.ok()) (*s)->exporting.reset();
}

// A new import of a file of file_size bytes (-1: unknown); returns its id.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_import_begin(double file_size) {
  keepstate::persistence::SnapshotReaderOptions options;
  if (file_size >= 0) options.file_size = static_cast<std::uint64_t>(file_size);
  const std::uint32_t id = g_next_import++;
  g_imports[id].reader.emplace(options);
  return id;
}

// Feeds the file's next bytes: each page is verified as it arrives.
// Errors: corruption, unsupported (a newer format), quota (too large), invalid-argument (id).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_import_add(std::uint32_t id, const std::uint8_t* bytes, std::uint32_t len) {
  auto it = g_imports.find(id);
  if (it == g_imports.end() || !it->second.reader) return Fail(Status::InvalidArgument("no import " + std::to_string(id)));
  return Done(it->second.reader->Add({bytes, len}));
}

// The whole file was fed: verifies the rest (trailer, checksum, the tree) and
// writes its description (JSON: pageSize, pageCount, schemaVersion, entries,
// storeVersion, createdAt) to the output buffer. Errors: as import_add.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_import_finish(std::uint32_t id) {
  auto it = g_imports.find(id);
  if (it == g_imports.end() || !it->second.reader) return Fail(Status::InvalidArgument("no import " + std::to_string(id)));
  Result<keepstate::persistence::ImportedSnapshot> done = std::move(*it->second.reader).Finish();
  it->second.reader.reset();
  if (!done.ok()) return Fail(done.status());
  const keepstate::persistence::SnapshotFileInfo& i = done->info;
  g_out = "{\"pageSize\":" + std::to_string(i.page_size) + ",\"pageCount\":" + std::to_string(i.page_count) +
          ",\"schemaVersion\":" + std::to_string(i.user_version) + ",\"entries\":" + std::to_string(i.entry_count) +
          ",\"storeVersion\":" + std::to_string(i.store_version) + ",\"createdAt\":" + std::to_string(i.created_unix_ms) + "}";
  it->second.done.emplace(std::move(*done));
  return 0;
}

// Makes the verified import the store's state, every page to be written by
// the next commit (which replaces the stored state atomically, on top of the
// stored version). Errors: invalid-argument (no finished import; another
// page size), busy (a transaction, an export or a commit is in flight), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_import_adopt(std::uint32_t handle, std::uint32_t id) {
  auto it = g_imports.find(id);
  if (it == g_imports.end() || !it->second.done) return Fail(Status::InvalidArgument("no verified import " + std::to_string(id)));
  return With(Usable(handle), [&](OpenStore& s) {
    if (s.txn || s.exporting || s.session.in_flight()) return Fail(Status::Busy("the store is busy (a transaction, an export or a commit)"));
    keepstate::engine::Arena& arena = it->second.done->store->arena();
    if (arena.page_size() != s.store->arena().page_size()) {
      return Fail(Status::InvalidArgument("the file's page size is " + std::to_string(arena.page_size()) + ", the store's " +
                                          std::to_string(s.store->arena().page_size())));
    }
    // The state may be smaller than the one it replaces, whose page count the
    // committed versions have: the pages beyond go to its free list.
    const std::uint32_t have = arena.page_count(), need = s.store->arena().page_count();
    if (have < need) {
      // Allocate takes free pages first: reserve for those too, then free everything taken.
      if (Status r = arena.Reserve(arena.free_count() + (need - have)); !r.ok()) return Fail(r);
      std::vector<keepstate::engine::PageId> taken;
      while (arena.page_count() < need) taken.push_back(arena.Allocate().value());
      for (keepstate::engine::PageId p : taken) arena.Free(p);
    }
    std::vector<keepstate::engine::PageId> all(arena.page_count());
    for (std::uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    arena.MarkDirty(all);
    s.store = std::move(it->second.done->store);
    s.changed = true;
    g_imports.erase(it);
    return 0;
  });
}

EMSCRIPTEN_KEEPALIVE void keepstate_import_discard(std::uint32_t id) { g_imports.erase(id); }

// Records, from now, the keys of the writes that land in the given ranges
// (layout WATCH_*; none: recording stops and what was recorded is dropped).
// Errors: closed, invalid-argument (handle, a malformed list).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_watch(std::uint32_t handle, const std::uint8_t* ranges,
                                                        std::uint32_t ranges_len) {
  Result<std::vector<keepstate::engine::KeyRange>> decoded = wire::DecodeWatchRanges(View(ranges, ranges_len));
  if (!decoded.ok()) return Fail(decoded.status());
  return With(Usable(handle), [&](OpenStore& s) {
    s.store->changes().Watch(std::move(*decoded));
    return 0;
  });
}

// The keys written since the last take, each once, in key order, with their
// values now, into the output buffer (CHANGE_DELETED: gone); forgets them.
// Errors: closed, invalid-argument (handle).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_take_changes(std::uint32_t handle) {
  return With(Usable(handle), [&](OpenStore& s) {
    std::vector<std::string> keys;
    s.store->changes().ForEach([&](std::string_view k) { keys.emplace_back(k); });
    s.store->changes().Clear();
    std::sort(keys.begin(), keys.end());  // std::string orders as unsigned bytes, as keys do
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    wire::BeginScan(&g_out);
    std::string value;
    for (const std::string& k : keys) {
      const bool found = s.store->tree().Get(k, &value).ok();
      wire::AppendChange(k, found ? std::optional<std::string_view>(value) : std::nullopt, &g_out);
    }
    wire::FinishScan(static_cast<std::uint32_t>(keys.size()), &g_out);
    return 0;
  });
}

// The keys whose values differ between two stores of one state line (after
// a catch-up: before, the state it left; after, the one it adopted), with
// after's values, into the output buffer as keepstate_store_take_changes
// does. Errors: closed, invalid-argument (a handle; different page sizes).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_diff(std::uint32_t before, std::uint32_t after) {
  // After an in-place catch-up the state before is gone: its changes were kept.
  if (Result<OpenStore*> in_place = Usable(after); in_place.ok() && (*in_place)->base_handle == before && (*in_place)->in_place_changes) {
    g_out = std::move(*(*in_place)->in_place_changes);
    (*in_place)->in_place_changes.reset();
    return 0;
  }
  Result<OpenStore*> b = Usable(before), a = Usable(after);
  if (!b.ok()) return Fail(b.status());
  if (!a.ok()) return Fail(a.status());
  const Store& x = *(*b)->store;
  const Store& y = *(*a)->store;
  if (x.arena().page_size() != y.arena().page_size()) return Fail(Status::InvalidArgument("the two stores have different page sizes"));
  // The pages that may differ: for a store opened from `before`, the ones it
  // read instead of taking them, and both sides' dirty pages (the pending work
  // before, its replay after) and those only one side has; else a comparison.
  std::vector<keepstate::engine::PageId> pages;
  if ((*a)->base_handle == before && (*a)->read_pages) {
    pages = *(*a)->read_pages;
    for (const keepstate::engine::Arena* arena : {&x.arena(), &y.arena()}) {
      const std::vector<keepstate::engine::PageId> dirty = arena->DirtyPages();
      pages.insert(pages.end(), dirty.begin(), dirty.end());
    }
    const std::uint32_t lo = std::min(x.arena().page_count(), y.arena().page_count());
    for (std::uint32_t id = lo; id < std::max(x.arena().page_count(), y.arena().page_count()); ++id) pages.push_back(id);
    std::sort(pages.begin(), pages.end());
    pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  } else {
    pages = keepstate::engine::DifferingPages(x.arena(), y.arena());
  }
  wire::BeginScan(&g_out);
  std::uint32_t count = 0;
  keepstate::engine::DiffStates(x, y, pages,
                                [&](std::string_view k, std::optional<std::string_view> v) {
                                  wire::AppendChange(k, v, &g_out);
                                  ++count;
                                });
  wire::FinishScan(count, &g_out);
  return 0;
}

// Step 1 of a commit: captures the dirty pages into a plan (see
// keepstate_store_plan). Errors: busy (a commit is in flight, or a
// transaction is open), not-found (nothing to commit), closed, internal.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_capture(std::uint32_t handle, double now_ms) {
  return With(Usable(handle), [&](OpenStore& s) {
    if (s.txn) return Fail(Status::Busy("a transaction is open"));
    if (s.session.in_flight()) return Fail(Status::Busy("a commit is already in flight"));
    if (!s.changed) return Fail(Status::NotFound("nothing to commit"));
    Status captured = s.session.Capture(s.store->arena(), static_cast<std::uint64_t>(now_ms));
    if (captured.ok()) s.changed = false;
    return Done(captured);
  });
}

// Describes the plan in flight as u32 words laid out as abi.h's PLAN_*;
// returns their address (0 if no plan). The pointers in it stay valid until
// keepstate_store_commit_done.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_store_plan(std::uint32_t handle) {
  Result<OpenStore*> s = Known(handle);
  if (!s.ok() || !(*s)->session.plan()) return 0;
  wire::EncodePlan((*s)->session.batch(), &g_out);
  return Address(g_out.data());
}

// Step 2, inside the commit's atomic write: the head check (StoreSession::
// CheckHead) against the stored head (present = 0: none stored). Writes the
// stored head's version to *actual_out (-1: it does not decode).
// Errors: conflict (another writer committed), unsupported (a newer head),
// closed (no commit in flight), invalid-argument (handle).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_check_head(std::uint32_t handle, const std::uint8_t* head,
                                                             std::uint32_t head_len, std::int32_t present,
                                                             double* actual_out) {
  return With(Known(handle), [&](OpenStore& s) {
    return Done(s.session.CheckHead(present ? std::optional(std::span<const std::uint8_t>(head, head_len)) : std::nullopt,
                                    actual_out));
  });
}

// The head rule (CheckStoredHead) for a write that is not this store's commit
// (a stashed commit, a rewrite from the copy): ok if the stored head is exactly
// `expected` (absent counts). Writes the stored head's version to *actual_out
// (0: none, -1: it does not decode). Errors: conflict, unsupported (a newer head).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_check_stored_head(const std::uint8_t* expected, std::uint32_t expected_len,
                                                              std::int32_t expected_present, const std::uint8_t* stored,
                                                              std::uint32_t stored_len, std::int32_t stored_present,
                                                              double* actual_out) {
  keepstate::persistence::WriteBatch batch;
  if (expected_present) batch.expected_head = std::span<const std::uint8_t>(expected, expected_len);
  std::optional<std::span<const std::uint8_t>> head;
  if (stored_present) head = std::span<const std::uint8_t>(stored, stored_len);
  *actual_out = 0;
  if (head) {
    Result<keepstate::persistence::Head> h = keepstate::persistence::DecodeHead(*head);
    *actual_out = h.ok() ? static_cast<double>(h->version) : -1;
  }
  return Done(keepstate::persistence::CheckStoredHead(batch, head));
}

// Step 3: code 0 = the write completed (the plan's version is now
// committed), otherwise it failed and the captured pages are dirty again.
// Errors: closed (no commit in flight), invalid-argument (handle).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_commit_done(std::uint32_t handle, std::int32_t code) {
  return With(Usable(handle), [&](OpenStore& s) {
    if (!s.session.in_flight()) return Fail(Status::Closed("no commit is in flight"));
    const Status outcome = code == 0 ? Status::Ok() : Status(static_cast<Code>(code), "the write failed");
    s.session.CommitDone(outcome, s.store->arena());
    if (!outcome.ok()) s.changed = true;
    return 0;
  });
}

// Starts the mutator `name` (registered with keepstate::sdk) as a fiber on
// this store with a copy of args; writes the call id (never 0) to *id_out.
// The fiber runs when JS next drives the scheduler; its outcome comes back
// through keepstate_call_take. Errors: invalid-argument (no mutator of that
// name, bad handle), closed (store not open).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_call(std::uint32_t handle, const std::uint8_t* name, std::uint32_t name_len,
                                                 const std::uint8_t* args, std::uint32_t args_len, std::uint32_t* id_out) {
  return With(Usable(handle), [&](OpenStore&) {
    Result<std::uint32_t> id = g_calls.Start(View(name, name_len), handle, {args, args_len});
    if (!id.ok()) return Fail(id.status());
    *id_out = *id;
    return 0;
  });
}

// Starts the read-only query `name` (KEEPSTATE_QUERY) on `handle` with a
// copy of `args`, as keepstate_call starts a mutator; its outcome is taken
// with keepstate_call_take. Errors: invalid-argument (no query of that name),
// closed (the store or the scheduler). The query itself fails with
// unsupported if it tries to write.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_query(std::uint32_t handle, const std::uint8_t* name, std::uint32_t name_len,
                                                  const std::uint8_t* args, std::uint32_t args_len,
                                                  std::uint32_t* id_out) {
  return With(Usable(handle), [&](OpenStore&) {
    Result<std::uint32_t> id = g_calls.StartQuery(View(name, name_len), handle, {args, args_len});
    if (!id.ok()) return Fail(id.status());
    *id_out = *id;
    return 0;
  });
}

// The oldest finished call: returns -1 if none has finished, else its status
// code with the id in *id_out: 0 = the mutator's result bytes are in the
// output buffer; otherwise the mutator's error (its message through
// keepstate_error_ptr/len).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_call_take(std::uint32_t* id_out) {
  std::optional<keepstate::sdk::CallOutcome> outcome = g_calls.Take();
  if (!outcome) return -1;
  *id_out = outcome->id;
  if (!outcome->status.ok()) return Fail(outcome->status);
  g_out.assign(reinterpret_cast<const char*>(outcome->result.data()), outcome->result.size());
  return 0;
}

// The module's scheduler, for keepstate_scheduler_run_for/complete_token.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_scheduler() { return Address(sched::ToC(&g_scheduler)); }

}  // extern "C"

// Every listed function exists with C linkage (a missing one fails here,
// before the linker's "undefined exported symbol").
#define KEEPSTATE_CHECK_EXPORT(name, ret, params) static_assert(sizeof(&::name) > 0, #name " is listed in abi.h");
KEEPSTATE_ABI_FUNCTIONS(KEEPSTATE_CHECK_EXPORT)
#undef KEEPSTATE_CHECK_EXPORT
