// exports.cc: the C ABI of the keepstate wasm module (abi.h lists the
// functions, their conventions and the wire layouts). A handle table over
// replica::Replica (what one openStore() in JS owns) and replica::Import that
// only converts, as LevelDB's db/c.cc: each export finds its object, calls one
// method, and turns the result into a status code and the output buffer
// (wire.h). The rules (open, catch-up, commit, import) are the Replica's.
// Unknown handles are invalid-argument in every export (abi.h).
//
// Invariant: a handle is its Replica's id(), never 0 and never reused, so a
// destroyed store's handle finds nothing.
//
// Thread safety: none; wasm runs on one thread and JS calls in one at a time.
#include <emscripten/emscripten.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "abi.h"
#include "keepstate/engine/page_buffer.h"
#include "keepstate/replica/replica.h"
#include "keepstate/scheduler/c_api.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/sdk/module.h"
#include "keepstate/status.h"
#include "scratch.h"
#include "wire.h"

// An arena's bytes while it moves to a larger buffer (PageBufferSpill in
// engine/page_buffer.h): held in a JS ArrayBuffer, outside linear memory.
// Addresses past 2 GiB arrive as negative numbers: >>> 0.
EM_JS(int, keepstate_spill_save, (const void* bytes, size_t n), {
  try {
    Module.keepstateSpilled = HEAPU8.slice(bytes >>> 0, (bytes >>> 0) + (n >>> 0));
    return 1;
  } catch (e) {
    return 0;  // no room for them in JS either
  }
});
EM_JS(void, keepstate_spill_load, (void* to), {
  HEAPU8.set(Module.keepstateSpilled, to >>> 0);
  Module.keepstateSpilled = undefined;
});

namespace {

constexpr keepstate::engine::PageBufferSpill kSpill{
    [](const std::uint8_t* bytes, std::size_t n) { return keepstate_spill_save(bytes, n) != 0; },
    [](std::uint8_t* to) { keepstate_spill_load(to); }};
const bool g_spill_set = (keepstate::engine::SetPageBufferSpill(&kSpill), true);

using keepstate::Code;
using keepstate::Result;
using keepstate::Status;
using keepstate::replica::Import;
using keepstate::replica::Replica;
using keepstate::wire::Address;
namespace wire = keepstate::wire;
namespace sched = keepstate::scheduler;

std::string g_error;
std::string g_out;
wire::ScratchBuffer g_scratch;
std::map<std::uint32_t, std::unique_ptr<Replica>> g_replicas;
std::map<std::uint32_t, Import> g_imports;
std::uint32_t g_next_import = 1;
sched::Scheduler g_scheduler;

Replica* Find(std::uint32_t handle) {
  auto it = g_replicas.find(handle);
  return it == g_replicas.end() ? nullptr : it->second.get();
}

Result<Replica*> Known(std::uint32_t handle) {
  if (Replica* r = Find(handle)) return r;
  return Status::InvalidArgument("no store with handle " + std::to_string(handle));
}

Result<Import*> KnownImport(std::uint32_t id) {
  auto it = g_imports.find(id);
  if (it == g_imports.end()) return Status::InvalidArgument("no import " + std::to_string(id));
  return &it->second;
}

// Mutator calls (keepstate::sdk) reach their store through the handle table.
keepstate::replica::ReplicaHost g_host(Find);
keepstate::sdk::CallQueue g_calls(&g_scheduler, &g_host);

std::int32_t Fail(const Status& s) {
  g_error = s.message();
  return static_cast<std::int32_t>(s.code());
}
std::int32_t Done(const Status& s) { return s.ok() ? 0 : Fail(s); }

// Runs `op(object)` if the lookup found it, else fails with the lookup's error.
template <typename T, typename Op>
std::int32_t With(Result<T*> found, Op op) {
  return found.ok() ? op(**found) : Fail(found.status());
}
// Runs `put(value)` (writing it where JS reads it) if `r` holds one, else fails with its error.
template <typename T, typename Put>
std::int32_t Then(Result<T> r, Put put) {
  return r.ok() ? (put(*r), 0) : Fail(r.status());
}

std::string_view View(const std::uint8_t* p, std::uint32_t n) { return {reinterpret_cast<const char*>(p), n}; }
std::span<const std::uint8_t> Span(const std::uint8_t* p, std::uint32_t n) { return {p, n}; }
std::optional<std::span<const std::uint8_t>> Present(const std::uint8_t* p, std::uint32_t n, std::int32_t present) {
  return present ? std::optional(Span(p, n)) : std::nullopt;
}
keepstate::replica::RecordKind Kind(std::uint32_t kind) { return static_cast<keepstate::replica::RecordKind>(kind); }

// An open's progress into the output buffer: the pack request, or the open report.
std::int32_t Progress(const Result<keepstate::replica::OpenProgress>& p) {
  return p.ok() ? (wire::EncodeOpenProgress(*p, &g_out), 0) : Fail(p.status());
}

// Runs `op(emit)`, emit writing each change into the output buffer (SCAN_, CHANGE_DELETED).
template <typename Op>
std::int32_t Changes(Op op) {
  wire::ScanWriter out(&g_out);
  const Status s = op([&](std::string_view k, std::optional<std::string_view> v) { out.Change(k, v); });
  return s.ok() ? (out.Finish(), 0) : Fail(s);
}

// Starts a mutator or a read-only query as a fiber (keepstate_call, keepstate_query).
std::int32_t StartCall(bool query, std::uint32_t handle, std::string_view name, std::span<const std::uint8_t> args, std::uint32_t* id_out) {
  return With(Known(handle), [&](Replica& r) {
    if (!r.open()) return Fail(Status::Closed("the store is not open"));
    // A synced store journals the call before it starts (a name no mutator has journals nothing).
    if (!query && r.synced() && keepstate::sdk::Find(name) != nullptr) {
      if (Result<std::uint64_t> journaled = r.Journal(name, args); !journaled.ok()) return Fail(journaled.status());
    }
    return Then(query ? g_calls.StartQuery(name, handle, args) : g_calls.Start(name, handle, args), [&](std::uint32_t id) { *id_out = id; });
  });
}

}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_error_ptr() { return Address(g_error.data()); }
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_error_len() { return static_cast<std::uint32_t>(g_error.size()); }
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_out_ptr() { return Address(g_out.data()); }
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_out_len() { return static_cast<std::uint32_t>(g_out.size()); }

// Returns 0 if memory cannot grow (scratch.h).
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_scratch(std::uint32_t size) { return Address(g_scratch.Reserve(size)); }

// A new store, not opened yet: its handle. page_size (a new store's), retain: 0 = default; writer_id names this
// writer in pack keys; open_empty_if_damaged = 1: every version damaged opens empty (else refused).
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_store_new(std::uint32_t page_size, std::uint32_t retain, double writer_id,
                                                       std::int32_t open_empty_if_damaged) {
  auto r = std::make_unique<Replica>(Replica::OptionsFor(page_size, retain, writer_id, open_empty_if_damaged != 0));
  const std::uint32_t handle = r->id();
  g_replicas.emplace(handle, std::move(r));
  return handle;
}

// Feeds one stored record (packs: the key only) before keepstate_store_open.
// Errors: invalid-argument (kind), closed (opening began).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_load_record(std::uint32_t handle, std::uint32_t kind,
                                                              const std::uint8_t* key, std::uint32_t key_len,
                                                              const std::uint8_t* bytes, std::uint32_t bytes_len) {
  return With(Known(handle), [&](Replica& r) { return Done(r.Load(Kind(kind), View(key, key_len), Span(bytes, bytes_len))); });
}

// A record stored but not read (a catch-up: the manifests below its base's
// keepstate_store_read_manifests_from). Errors: as load_record.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_load_unread(std::uint32_t handle, std::uint32_t kind,
                                                              const std::uint8_t* key, std::uint32_t key_len) {
  return With(Known(handle), [&](Replica& r) { return Done(r.LoadUnread(Kind(kind), View(key, key_len))); });
}

// Into the output buffer: the lowest manifest key a store catching up from this one (open_from)
// must read; those below it it may load unread. Errors: closed (not open), invalid-argument.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_read_manifests_from(std::uint32_t handle) {
  return With(Known(handle), [](Replica& r) { return Then(r.ReadManifestsFrom(), [](std::string& k) { g_out = std::move(k); }); });
}

// Starts restoring the newest verified version from the loaded records (or opens empty). The
// output buffer then holds a pack request, which JS answers with keepstate_store_open_pack
// (answered the same way), or the open report (JSON, wire.h). Errors: unsupported (a newer
// format), invalid-argument (handle, options), quota (state too large), closed (already opening).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open(std::uint32_t handle) {
  return With(Known(handle), [](Replica& r) { return Progress(r.Open()); });
}

// keepstate_store_open catching up from open store `base` (Replica::OpenFrom): only the packs of
// changed pages are asked for. in_place = 1 (base clean): they are staged, the report says
// "inPlace", and keepstate_store_adopt_in_place applies them to base's arena. REQUIRES: base stays
// open until this store opened. Errors: as open; invalid-argument (base unknown), closed (not open).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open_from(std::uint32_t handle, std::uint32_t base, std::int32_t in_place) {
  return With(Known(base), [&](Replica& from) {
    return With(Known(handle), [&](Replica& r) { return Progress(r.OpenFrom(from, in_place != 0)); });
  });
}

// Completes an in-place open_from (Replica::AdoptInPlace): base's arena becomes this store's
// (destroy base); what changed for its watched keys is kept for keepstate_store_diff. Errors:
// busy (base changed meanwhile; nothing changed: open again without in_place), corruption
// (nothing changed), closed, invalid-argument (not an in-place open; the base is gone).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_adopt_in_place(std::uint32_t handle) {
  return With(Known(handle), [](Replica& r) {
    if (!r.staged()) return Fail(Status::InvalidArgument("not an in-place open"));
    return With(Known(r.base_id()), [&](Replica& base) { return Done(r.AdoptInPlace(base)); });
  });
}

// Feeds the pack asked for (present = 0: not stored); answers as keepstate_store_open.
// Errors: as keepstate_store_open; closed (no pack was asked for).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open_pack(std::uint32_t handle, const std::uint8_t* bytes,
                                                            std::uint32_t len, std::int32_t present) {
  return With(Known(handle), [&](Replica& r) { return Progress(r.AddPack(Present(bytes, len, present))); });
}

// Forgets the store (uncommitted changes are dropped; JS commits first).
EMSCRIPTEN_KEEPALIVE void keepstate_store_destroy(std::uint32_t handle) { g_replicas.erase(handle); }

// The committed version the state is based on (0: none or unknown handle).
EMSCRIPTEN_KEEPALIVE double keepstate_store_version(std::uint32_t handle) {
  return Find(handle) != nullptr ? static_cast<double>(Find(handle)->version()) : 0;
}
// 1 if there are uncommitted changes (a commit in flight included).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_dirty(std::uint32_t handle) { return Find(handle) && Find(handle)->dirty(); }

// The value of key into the output buffer. Errors: not-found, invalid-argument (key size), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_get(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len) {
  return With(Known(handle), [&](Replica& r) { return Done(r.Get(in_txn != 0, View(key, key_len), &g_out)); });
}

// 0 if key exists, not-found if not. Errors: invalid-argument, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_has(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len) {
  return With(Known(handle), [&](Replica& r) { return Done(r.Has(in_txn != 0, View(key, key_len))); });
}

// Errors: invalid-argument (key or value size), busy (a transaction is open, in_txn = 0), quota, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_put(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len,
                                                      const std::uint8_t* value, std::uint32_t value_len) {
  return With(Known(handle), [&](Replica& r) { return Done(r.Put(in_txn != 0, View(key, key_len), View(value, value_len))); });
}

// 0 if the key was deleted, not-found if it did not exist. Errors as put.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_delete(std::uint32_t handle, std::int32_t in_txn,
                                                         const std::uint8_t* key, std::uint32_t key_len) {
  return With(Known(handle), [&](Replica& r) { return Done(r.Delete(in_txn != 0, View(key, key_len))); });
}

// Entries in range into the output buffer, laid out as abi.h's SCAN_*. Errors: closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_scan(
    std::uint32_t handle, std::int32_t in_txn, const std::uint8_t* prefix, std::uint32_t prefix_len,
    std::int32_t has_prefix, const std::uint8_t* start, std::uint32_t start_len, const std::uint8_t* end,
    std::uint32_t end_len, std::int32_t has_end, double limit, std::int32_t reverse) {
  // The arguments may point into the scratch buffer; copy before g_out grows.
  const std::string p(View(prefix, prefix_len)), b(View(start, start_len)), e(View(end, end_len));
  std::string end_storage;
  const auto options = wire::ScanFromArgs(p, has_prefix != 0, b, e, has_end != 0, limit, reverse != 0, &end_storage);
  return With(Known(handle), [&](Replica& r) {
    wire::ScanWriter out(&g_out);
    const Status s = r.Scan(in_txn != 0, options, [&](std::string_view k, std::string_view v) { return out.Entry(k, v); });
    return s.ok() ? (out.Finish(), 0) : Fail(s);
  });
}

// Opens the store's write transaction. Errors: busy (one is open), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_begin(std::uint32_t handle) {
  return With(Known(handle), [](Replica& r) { return Done(r.Begin()); });
}

// Commits (commit = 1) or aborts the open transaction. Errors: closed (none), quota (nothing applied).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_end(std::uint32_t handle, std::int32_t commit) {
  return With(Known(handle), [&](Replica& r) { return Done(r.End(commit != 0)); });
}

// The app's schema version: the store's (in_txn 0) or the open transaction's (1); 0: unknown/closed.
EMSCRIPTEN_KEEPALIVE double keepstate_store_schema_version(std::uint32_t handle, std::int32_t in_txn) {
  return Find(handle) != nullptr ? static_cast<double>(Find(handle)->schema_version(in_txn != 0)) : 0;
}

// Sets the schema version in the open transaction. Errors: closed (no transaction), invalid-argument.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_set_schema_version(std::uint32_t handle, double version) {
  if (!(version >= 0 && version <= 9007199254740991.0) || version != static_cast<double>(static_cast<std::uint64_t>(version))) {
    return Fail(Status::InvalidArgument("a schema version is an integer from 0 to 2^53 - 1"));
  }
  return With(Known(handle), [&](Replica& r) { return Done(r.SetSchemaVersion(static_cast<std::uint64_t>(version))); });
}

// Runs the module's C++ migrations (KEEPSTATE_MIGRATION) with from < version <= to, in order, in
// the open transaction. Errors: the first migration's (the caller aborts), closed (no transaction).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_run_migrations(std::uint32_t handle, double from, double to) {
  return With(Known(handle), [&](Replica& r) {
    return Done(r.RunMigrations(static_cast<std::uint64_t>(from), static_cast<std::uint64_t>(to)));
  });
}

// The highest schema version the module's C++ migrations reach (0: none).
EMSCRIPTEN_KEEPALIVE double keepstate_migrations_newest() {
  const auto migrations = keepstate::sdk::RegisteredMigrations();
  return migrations.empty() ? 0 : static_cast<double>(migrations.back().first);
}

// Starts exporting the store's state as a snapshot file; its size in bytes to *size_out.
// Errors: busy (uncommitted changes: commit first; a transaction or an export is open), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_export_begin(std::uint32_t handle, double now_ms, double* size_out) {
  return With(Known(handle), [&](Replica& r) {
    return Then(r.BeginExport(static_cast<std::uint64_t>(now_ms)), [&](std::uint64_t n) { *size_out = static_cast<double>(n); });
  });
}

// The file's next bytes into buffer, their count to *n_out (0: done). Errors: busy (changed), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_export_read(std::uint32_t handle, std::uint8_t* buffer,
                                                       std::uint32_t capacity, std::uint32_t* n_out) {
  return With(Known(handle), [&](Replica& r) {
    return Then(r.ReadExport({buffer, capacity}), [&](std::size_t n) { *n_out = static_cast<std::uint32_t>(n); });
  });
}

EMSCRIPTEN_KEEPALIVE void keepstate_export_end(std::uint32_t handle) {
  if (Replica* r = Find(handle)) r->EndExport();
}

// A new import of a file of file_size bytes (-1: unknown); returns its id.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_import_begin(double file_size) {
  const std::uint32_t id = g_next_import++;
  g_imports.emplace(id, Import(file_size >= 0 ? std::optional(static_cast<std::uint64_t>(file_size)) : std::nullopt));
  return id;
}

// Feeds the file's next bytes: each page is verified as it arrives. Errors: corruption,
// unsupported (a newer format), quota (too large), invalid-argument (the import was finished).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_import_add(std::uint32_t id, const std::uint8_t* bytes, std::uint32_t len) {
  return With(KnownImport(id), [&](Import& i) { return Done(i.Add(Span(bytes, len))); });
}

// The whole file was fed: verifies the rest (trailer, checksum, tree); its description (JSON,
// wire.h) into the output buffer. Errors: as import_add.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_import_finish(std::uint32_t id) {
  return With(KnownImport(id), [](Import& i) {
    if (Status s = i.Finish(); !s.ok()) return Fail(s);
    wire::EncodeImportInfo(i.info(), &g_out);
    return 0;
  });
}

// Makes the verified import the store's state (Replica::AdoptImport), written whole by
// the next commit; the import is then gone. Errors: invalid-argument (no finished
// import; another page size), busy (a transaction, an export or a commit), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_import_adopt(std::uint32_t handle, std::uint32_t id) {
  return With(KnownImport(id), [&](Import& i) {
    return With(Known(handle), [&](Replica& r) {
      if (Status s = r.AdoptImport(i); !s.ok()) return Fail(s);
      g_imports.erase(id);
      return 0;
    });
  });
}

EMSCRIPTEN_KEEPALIVE void keepstate_import_discard(std::uint32_t id) { g_imports.erase(id); }

// Records, from now, the keys of the writes that land in the given ranges (WATCH_*;
// none: recording stops, what was recorded is dropped). Errors: closed, invalid-argument (list).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_watch(std::uint32_t handle, const std::uint8_t* ranges,
                                                        std::uint32_t ranges_len) {
  auto decoded = wire::DecodeWatchRanges(View(ranges, ranges_len));
  if (!decoded.ok()) return Fail(decoded.status());
  return With(Known(handle), [&](Replica& r) { return Done(r.Watch(std::move(*decoded))); });
}

// The keys written since the last take, each once, in key order, with their values now, into
// the output buffer (CHANGE_DELETED: gone); forgets them. Errors: closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_take_changes(std::uint32_t handle) {
  return With(Known(handle), [](Replica& r) { return Changes([&](const auto& emit) { return r.TakeChanges(emit); }); });
}

// The keys whose values differ between two stores of one state line (Replica::DiffFrom), with
// after's values, as take_changes. Errors: closed, invalid-argument (different page sizes).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_diff(std::uint32_t before, std::uint32_t after) {
  return With(Known(after), [&](Replica& r) {
    return Changes([&](const auto& emit) { return r.DiffFrom(before, Find(before), emit); });
  });
}

// Step 1 of a commit: captures the dirty pages into a plan (keepstate_store_plan). Errors:
// busy (a commit is in flight, or a transaction is open), not-found (nothing to commit), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_capture(std::uint32_t handle, double now_ms) {
  return With(Known(handle), [&](Replica& r) { return Done(r.Capture(static_cast<std::uint64_t>(now_ms))); });
}

// The plan in flight as u32 words laid out as abi.h's PLAN_*: their address (0: no
// plan); the pointers in it stay valid until keepstate_store_commit_done.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_store_plan(std::uint32_t handle) {
  const Replica* r = Find(handle);
  const auto batch = r != nullptr ? r->batch() : std::nullopt;
  if (!batch) return 0;
  wire::EncodePlan(*batch, &g_out);
  return Address(g_out.data());
}

// Step 2, inside the commit's atomic write: the head check against the stored head
// (present = 0: none); its version to *actual_out (-1: it does not decode). Errors:
// conflict (another writer committed), unsupported (a newer head), closed (no commit).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_check_head(std::uint32_t handle, const std::uint8_t* head,
                                                             std::uint32_t head_len, std::int32_t present,
                                                             double* actual_out) {
  return With(Known(handle), [&](Replica& r) { return Done(r.CheckHead(Present(head, head_len, present), actual_out)); });
}

// Step 3: code 0 = the write completed (the plan's version is committed), else it
// failed and the captured pages are dirty again. Errors: closed (no commit in flight).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_commit_done(std::uint32_t handle, std::int32_t code) {
  const Status outcome = code == 0 ? Status::Ok() : Status(static_cast<Code>(code), "the write failed");
  return With(Known(handle), [&](Replica& r) { return Done(r.CommitDone(outcome)); });
}

// The head check of a write no store captured (a stash, the copy rewriting IndexedDB):
// 0 if the stored head (stored_present = 0: none) is byte for byte the expected one
// (expected_present = 0: none; both absent are equal); the stored head's version to
// *actual_out (0: none, -1: it does not decode). Errors: conflict (the message says
// which version is stored and which expected), unsupported (a newer head format).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_check_stored_head(const std::uint8_t* expected, std::uint32_t expected_len,
                                                              std::int32_t expected_present, const std::uint8_t* stored,
                                                              std::uint32_t stored_len, std::int32_t stored_present,
                                                              double* actual_out) {
  return Done(keepstate::replica::CheckHead(Present(expected, expected_len, expected_present),
                                            Present(stored, stored_len, stored_present), actual_out));
}

// The version a head record claims (the checksum is not verified), 0 if the bytes
// are not one (size, magic). For names and reports: keepstate_check_stored_head compares.
EMSCRIPTEN_KEEPALIVE double keepstate_head_version(const std::uint8_t* bytes, std::uint32_t len) {
  return static_cast<double>(keepstate::replica::HeadVersion(Span(bytes, len)));
}

// Starts the mutator `name` (keepstate::sdk) as a fiber on this store with a copy of
// args; the call id (never 0) to *id_out. It runs when JS next drives the scheduler;
// keepstate_call_take gives its outcome. Errors: invalid-argument (no such mutator), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_call(std::uint32_t handle, const std::uint8_t* name, std::uint32_t name_len,
                                                 const std::uint8_t* args, std::uint32_t args_len, std::uint32_t* id_out) {
  return StartCall(false, handle, View(name, name_len), Span(args, args_len), id_out);
}

// keepstate_call for the read-only query `name` (KEEPSTATE_QUERY; unsupported if it writes).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_query(std::uint32_t handle, const std::uint8_t* name, std::uint32_t name_len,
                                                  const std::uint8_t* args, std::uint32_t args_len, std::uint32_t* id_out) {
  return StartCall(true, handle, View(name, name_len), Span(args, args_len), id_out);
}

// The oldest finished call: -1 if none, else its status code with the id in *id_out
// (0: the mutator's result bytes are in the output buffer; else its error).
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

// --- Sync (docs/sync.md): a synced store's journal ------------------------------------

// Makes the store synced as client `client` (journaling what it holds). Errors: invalid-argument
// (client id), conflict (synced as another client), busy, quota, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_sync_init(std::uint32_t handle, const std::uint8_t* client, std::uint32_t client_len) {
  return With(Known(handle), [&](Replica& r) { return Done(r.SyncInit(View(client, client_len))); });
}

// The meta as JSON into the output buffer: {"client","version","lastMutationId","nextMutationId"}.
// Errors: not-found (not synced), corruption, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_sync_state(std::uint32_t handle) {
  return With(Known(handle), [&](Replica& r) {
    return Then(r.SyncState(), [&](const keepstate::replica::SyncMeta& m) { wire::EncodeSyncMeta(m, &g_out); });
  });
}

// The journaled mutations above `after`, at most max_count and about max_bytes of args (at least
// one), as SCAN_ entries: key "<id> <name>", value the args. Errors: corruption, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_sync_pending(std::uint32_t handle, double after, std::uint32_t max_count,
                                                        std::uint32_t max_bytes) {
  return With(Known(handle), [&](Replica& r) {
    wire::ScanWriter out(&g_out);
    std::uint32_t count = 0;
    std::uint64_t bytes = 0;
    const Status s = r.SyncPending(static_cast<std::uint64_t>(after), [&](std::uint64_t id, std::string_view name, auto args) {
      if (count > 0 && (count >= max_count || bytes + args.size() > max_bytes)) return false;
      ++count;
      bytes += args.size();
      return out.Entry(std::to_string(id) + " " + std::string(name), View(args.data(), static_cast<std::uint32_t>(args.size())));
    });
    return s.ok() ? (out.Finish(), 0) : Fail(s);
  });
}

// The keys local work changed since the server version, as SCAN_ entries whose values are the
// keys' bytes (a key a mutator wrote need not be UTF-8). Errors: closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_sync_marked(std::uint32_t handle) {
  return With(Known(handle), [&](Replica& r) {
    wire::ScanWriter out(&g_out);
    const Status s = r.SyncMarked([&](std::string_view key) { out.Entry({}, key); });
    return s.ok() ? (out.Finish(), 0) : Fail(s);
  });
}

// Adopts a pull: entries laid out as u32 key length, key, i32 value length (-1: absent), value,
// repeated. Errors: invalid-argument (entries that do not decode, a key or value size),
// unsupported (not synced), busy, quota, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_sync_apply(std::uint32_t handle, double version, double last_mutation_id,
                                                      const std::uint8_t* entries, std::uint32_t entries_len) {
  Result<std::vector<wire::PulledEntry>> decoded = wire::DecodePulledEntries(Span(entries, entries_len));
  if (!decoded.ok()) return Fail(decoded.status());
  return With(Known(handle), [&](Replica& r) {
    return Done(r.ApplyPull(static_cast<std::uint64_t>(version), static_cast<std::uint64_t>(last_mutation_id), *decoded));
  });
}

// Starts journaled mutation `mutation_id` again (a replay after a pull: it stays journaled as it
// is). Errors: not-found (no such mutation), invalid-argument (its mutator is unknown), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_sync_replay(std::uint32_t handle, double mutation_id, std::uint32_t* id_out) {
  return With(Known(handle), [&](Replica& r) {
    const auto want = static_cast<std::uint64_t>(mutation_id);
    std::string name;
    std::vector<std::uint8_t> args;
    bool found = false;
    const Status s = r.SyncPending(want - 1, [&](std::uint64_t id, std::string_view n, auto a) {
      found = id == want;
      if (found) name.assign(n), args.assign(a.begin(), a.end());
      return false;
    });
    if (!s.ok()) return Fail(s);
    if (!found) return Fail(Status::NotFound("no journaled mutation " + std::to_string(want)));
    return Then(g_calls.Start(name, handle, args), [&](std::uint32_t id) { *id_out = id; });
  });
}

// keepstate_import_adopt for a synced store taking its server's snapshot: the journal stays.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_sync_adopt(std::uint32_t handle, std::uint32_t import_id) {
  return With(Known(handle), [&](Replica& r) {
    return With(KnownImport(import_id), [&](Import& import) { return Done(r.AdoptImport(import, /*keep_journal=*/true)); });
  });
}

}  // extern "C"

// Every listed function exists with C linkage (a missing one fails here, not at the link).
#define KEEPSTATE_CHECK_EXPORT(name, ret, params) static_assert(sizeof(&::name) > 0, #name " is listed in abi.h");
KEEPSTATE_ABI_FUNCTIONS(KEEPSTATE_CHECK_EXPORT)
#undef KEEPSTATE_CHECK_EXPORT
