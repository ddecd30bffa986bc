// exports.cc: the C ABI of the keepstate wasm module (see abi.h for the list
// of functions and the calling conventions).
//
// A "store" here is what one openStore() in JS owns: the engine Store (B+tree
// on an Arena), the Persister that turns its dirty pages into commits, and
// the commit in flight, if any. JS does all the I/O (IndexedDB); this file
// only ever sees bytes: the records of the store's database on open, the
// stored head inside each commit transaction.
//
// Invariants:
//  - At most one commit plan per store is in flight (Persister checks it).
//  - `changed` is true iff a write landed since the last capture, or a
//    captured commit failed; dirty() is changed || a plan is in flight.
//  - `known_head` is the exact head record this store's state is based on
//    (absent: none stored). A commit lands only if the stored head still has
//    exactly these bytes: that is the optimistic-concurrency check, and it
//    also works when the stored head is unreadable (restored by fallback).
//  - An autosave fiber is armed at most once per store (autosave_armed).
//
// Thread safety: none; wasm runs on one thread and JS calls in one at a time.
#include <emscripten/emscripten.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "abi.h"
#include "keepstate/engine/store.h"
#include "keepstate/persistence/format.h"
#include "keepstate/persistence/persister.h"
#include "keepstate/persistence/record_store.h"
#include "keepstate/scheduler/c_api.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/scheduler/task.h"
#include "keepstate/sdk/module.h"
#include "keepstate/status.h"

namespace {

using keepstate::Code;
using keepstate::Result;
using keepstate::Status;
using keepstate::engine::Arena;
using keepstate::engine::ScanOptions;
using keepstate::engine::Store;
using keepstate::engine::Txn;
using keepstate::persistence::CommitPlan;
using keepstate::persistence::DecodeHead;
using keepstate::persistence::DecodeManifest;
using keepstate::persistence::MemoryRecordStore;
using keepstate::persistence::Persister;
using keepstate::persistence::PersisterOptions;
using keepstate::persistence::RestoreSession;
using keepstate::persistence::Restored;
using keepstate::persistence::RecordKind;
using keepstate::persistence::kRecordKindCount;
namespace sched = keepstate::scheduler;

struct OpenStore {
  std::uint32_t handle = 0;
  PersisterOptions options;
  // Records fed by JS before keepstate_store_open (the head, the manifests
  // and only the keys of the packs); emptied once the store is open.
  MemoryRecordStore loading;
  // The restore in progress between keepstate_store_open and the last
  // keepstate_store_open_pack: it asks JS for one pack at a time.
  std::optional<RestoreSession> restoring;
  std::unique_ptr<Store> store;
  std::optional<Persister> persister;
  std::optional<Txn> txn;
  std::optional<CommitPlan> plan;
  std::optional<std::vector<std::uint8_t>> known_head;
  std::uint64_t based_on = 0;  // committed version the state is based on
  // The stored data did not verify at all: the first commit clears the
  // database and starts a fresh version line.
  bool fresh_line = false;
  bool changed = false;
  std::uint32_t requested_page_size = 0;  // the caller's, for a fresh line
  double autosave_ms = 0;
  bool autosave_armed = false;

  bool dirty() const { return changed || plan.has_value(); }
};

std::string g_error;
std::string g_out;
std::vector<std::uint8_t> g_scratch;
std::map<std::uint32_t, std::unique_ptr<OpenStore>> g_stores;
std::uint32_t g_next_handle = 1;
sched::Scheduler g_scheduler;
struct AutosaveRequest {
  std::uint32_t store;
  std::uint32_t token;
};
std::deque<AutosaveRequest> g_autosave_requests;

// Mutator calls (keepstate::sdk) reach their store through the handle table,
// so a call whose store was closed or reloaded meanwhile gets Closed.
class OpenStoreHost final : public keepstate::sdk::StoreHost {
 public:
  Result<keepstate::engine::Store*> Find(std::uint32_t handle) override;
  void Changed(std::uint32_t handle) override;
};
OpenStoreHost g_store_host;
keepstate::sdk::CallQueue g_calls(&g_scheduler, &g_store_host);

std::int32_t Fail(const Status& s) {
  g_error = s.message();
  return static_cast<std::int32_t>(s.code());
}
std::int32_t Fail(Code code, std::string message) { return Fail(Status(code, std::move(message))); }
std::int32_t Done(const Status& s) { return s.ok() ? 0 : Fail(s); }

OpenStore* Find(std::uint32_t handle) {
  auto it = g_stores.find(handle);
  return it == g_stores.end() ? nullptr : it->second.get();
}

// The store for a read or write: InvalidArgument for a bad handle, Closed
// before open/after destroy.
Result<OpenStore*> Usable(std::uint32_t handle) {
  OpenStore* s = Find(handle);
  if (s == nullptr) return Status::Closed("no open store with handle " + std::to_string(handle));
  if (!s->store) return Status::Closed("the store is not open");
  return s;
}

std::string_view View(const std::uint8_t* p, std::uint32_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

void AppendU32(std::string* out, std::uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

sched::Task<void> AutosaveFiber(std::uint32_t handle, double ms);

// A write landed: remember it and arm the autosave fiber if it is not.
void MarkChanged(OpenStore* s) {
  s->changed = true;
  if (s->autosave_ms > 0 && !s->autosave_armed && !g_scheduler.closed()) {
    s->autosave_armed = true;
    g_scheduler.Spawn(AutosaveFiber(s->handle, s->autosave_ms));
  }
}

// Sleeps `ms`, then asks JS (through a completion token JS collects with
// keepstate_autosave_take) to commit, and waits for the outcome. Re-arms if
// the commit succeeded and more changes arrived meanwhile; after a failure the
// next write re-arms, so a conflict is not retried in a loop.
sched::Task<void> AutosaveFiber(std::uint32_t handle, double ms) {
  co_await sched::SleepFor(sched::Duration(static_cast<sched::Duration::rep>(ms * 1e6)));
  OpenStore* s = Find(handle);
  if (s == nullptr) co_return;
  if (!s->changed) {
    s->autosave_armed = false;
    co_return;
  }
  const std::uint32_t token = g_scheduler.CreateToken();
  g_autosave_requests.push_back({handle, token});
  Result<sched::Bytes> outcome = co_await g_scheduler.AwaitToken(token);
  s = Find(handle);
  if (s == nullptr) co_return;
  s->autosave_armed = false;
  if (outcome.ok() && s->changed) MarkChanged(s);
}

Result<keepstate::engine::Store*> OpenStoreHost::Find(std::uint32_t handle) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Status::Closed("the store of this call was closed or reloaded");
  return (*s)->store.get();
}

void OpenStoreHost::Changed(std::uint32_t handle) {
  if (OpenStore* s = ::Find(handle)) MarkChanged(s);
}

// The page size of the newest manifest that decodes, if any (an existing
// store keeps the page size it was created with).
std::optional<std::uint32_t> StoredPageSize(MemoryRecordStore& records) {
  Result<std::vector<std::string>> keys = records.List(RecordKind::kManifest);
  if (!keys.ok()) return std::nullopt;
  for (auto it = keys->rbegin(); it != keys->rend(); ++it) {
    Result<std::vector<std::uint8_t>> bytes = records.Get(RecordKind::kManifest, *it);
    if (!bytes.ok()) continue;
    Result<keepstate::persistence::Manifest> m = DecodeManifest(*bytes);
    if (m.ok()) return m->page_size;
  }
  return std::nullopt;
}

void AppendFailure(std::string* out, bool* first, std::uint64_t version, const Status& status) {
  if (!*first) out->push_back(',');
  *first = false;
  out->append("{\"version\":" + std::to_string(version) + ",\"code\":");
  AppendJsonString(out, keepstate::CodeName(status.code()));
  out->append(",\"message\":");
  AppendJsonString(out, status.message());
  out->push_back('}');
}

// Fills the scan options from the ABI's arguments: prefix bounds intersected
// with [start, end).
ScanOptions MakeScan(std::string_view prefix, bool has_prefix, std::string_view start,
                     std::string_view end, bool has_end, double limit, bool reverse,
                     std::string* end_storage) {
  ScanOptions o;
  if (has_prefix && !prefix.empty()) {
    o = keepstate::engine::PrefixScan(prefix, end_storage);
  }
  if (keepstate::engine::CompareKeys(start, o.start) > 0) o.start = start;
  if (has_end && (!o.has_end || keepstate::engine::CompareKeys(end, o.end) < 0)) {
    o.end = end;
    o.has_end = true;
  }
  o.reverse = reverse;
  o.limit = limit > 0 ? static_cast<std::uint64_t>(limit) : 0;
  return o;
}

}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_error_ptr() {
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(g_error.data()));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_error_len() {
  return static_cast<std::uint32_t>(g_error.size());
}
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_out_ptr() {
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(g_out.data()));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_out_len() {
  return static_cast<std::uint32_t>(g_out.size());
}

// Returns 0 if memory cannot grow.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_scratch(std::uint32_t size) {
  if (g_scratch.size() < size) {
    g_scratch = std::vector<std::uint8_t>();
    g_scratch.resize(std::max<std::size_t>(size, 4096));
  }
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(g_scratch.data()));
}

// A new, not yet opened store. page_size and retain: 0 for the defaults
// (page_size only matters for a new store). writer_id identifies this writer
// (tab) in pack keys; JS passes a random 53-bit number. Returns the handle.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_store_new(std::uint32_t page_size, std::uint32_t retain,
                                                       double writer_id) {
  auto s = std::make_unique<OpenStore>();
  s->handle = g_next_handle++;
  // 0 keeps the engine's defaults (one source for them: the C++ options).
  if (page_size != 0) s->options.page_size = page_size;
  if (retain != 0) s->options.retain_versions = retain;
  s->options.writer_id = static_cast<std::uint64_t>(writer_id);
  const std::uint32_t handle = s->handle;
  g_stores.emplace(handle, std::move(s));
  return handle;
}

// Feeds one stored record before keepstate_store_open.
// Errors: invalid-argument (bad handle or kind), closed (already open).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_load_record(std::uint32_t handle, std::uint32_t kind,
                                                              const std::uint8_t* key, std::uint32_t key_len,
                                                              const std::uint8_t* bytes,
                                                              std::uint32_t bytes_len) {
  OpenStore* s = Find(handle);
  if (s == nullptr) return Fail(Code::kInvalidArgument, "unknown store handle");
  if (s->store) return Fail(Code::kClosed, "records can only be loaded before open");
  if (kind >= static_cast<std::uint32_t>(kRecordKindCount)) {
    return Fail(Code::kInvalidArgument, "bad record kind " + std::to_string(kind));
  }
  s->loading.Put(static_cast<RecordKind>(kind), std::string(View(key, key_len)),
                 std::vector<std::uint8_t>(bytes, bytes + bytes_len));
  return 0;
}

}  // extern "C"

namespace {

// Opens the store once its restore has an outcome: the restored version, an
// empty store, or (nothing verified) an empty state on a fresh version line.
std::int32_t FinishOpen(OpenStore* s, Result<Restored> restored) {
  s->restoring.reset();
  std::string report;
  bool first = true;
  Result<Persister::Opened> opened = Persister::OpenFrom(s->loading, s->options, std::move(restored));
  if (opened.ok()) {
    Result<std::unique_ptr<Store>> store = Store::FromArena(std::move(opened->arena), /*verify=*/true);
    if (!store.ok()) return Fail(store.status());
    s->store = std::move(*store);
    s->persister.emplace(std::move(opened->persister));
    s->based_on = opened->restored_version;
    for (const auto& f : opened->failures) AppendFailure(&report, &first, f.version, f.status);
  } else if (opened.status().code() == Code::kCorruption) {
    // Nothing verified: open empty and say so; the first commit replaces the
    // unreadable records (fresh version line).
    s->options.page_size = s->requested_page_size;
    Result<Arena> arena = Arena::Create(s->requested_page_size);
    if (!arena.ok()) return Fail(arena.status());
    Result<std::unique_ptr<Store>> store = Store::FromArena(std::move(*arena), /*verify=*/false);
    if (!store.ok()) return Fail(store.status());
    s->store = std::move(*store);
    s->persister.emplace(s->options);
    s->fresh_line = true;
    AppendFailure(&report, &first, 0, opened.status());
  } else {
    return Fail(opened.status());
  }
  s->loading = MemoryRecordStore();
  g_out = "{\"restored\":" + std::to_string(s->based_on) + ",\"fresh\":" +
          (s->fresh_line ? "true" : "false") + ",\"failures\":[" + report + "]}";
  return 0;
}

// After open or a fed pack: ask for the next pack, or finish.
std::int32_t ContinueOpen(OpenStore* s) {
  if (std::optional<keepstate::persistence::PackId> id = s->restoring->needed()) {
    g_out = "{\"need\":";
    AppendJsonString(&g_out, keepstate::persistence::PackKey(*id));
    if (std::optional<keepstate::persistence::PackId> after = s->restoring->needed_after()) {
      g_out += ",\"then\":";
      AppendJsonString(&g_out, keepstate::persistence::PackKey(*after));
    }
    g_out += "}";
    return 0;
  }
  return FinishOpen(s, std::move(*s->restoring).Finish());
}

}  // namespace

extern "C" {

// Starts restoring the newest verified version from the loaded records
// (falling back to older retained ones), or opens empty. The output buffer
// then holds JSON: either {"need": "<pack key>", "then": "<pack key>"?} —
// JS reads the needed pack (and may start reading "then", the one after it) and
// passes it to keepstate_store_open_pack, which answers the same way — or
// the final report {"restored": V, "fresh": bool, "failures": [{version,
// code, message}]}; "fresh" means nothing verified and the store starts a
// new version line. Only one pack is ever staged in wasm memory.
// Errors: unsupported (a newer format wrote the store), invalid-argument
// (bad options), quota (state too large), closed (already open or opening).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open(std::uint32_t handle) {
  OpenStore* s = Find(handle);
  if (s == nullptr) return Fail(Code::kInvalidArgument, "unknown store handle");
  if (s->store || s->restoring) return Fail(Code::kClosed, "the store is already open");
  s->requested_page_size = s->options.page_size;
  if (std::optional<std::uint32_t> ps = StoredPageSize(s->loading)) s->options.page_size = *ps;

  Result<std::vector<std::uint8_t>> head = s->loading.Get(RecordKind::kHead, keepstate::persistence::kHeadKey);
  if (head.ok()) s->known_head = std::move(*head);

  Result<RestoreSession> session =
      RestoreSession::Begin(s->loading, Persister::RestoreOptionsFor(s->options));
  if (!session.ok()) return FinishOpen(s, session.status());
  s->restoring.emplace(std::move(*session));
  return ContinueOpen(s);
}

// Feeds the pack keepstate_store_open (or the previous call) asked for:
// `present` = 0 if it is not stored. Answers as keepstate_store_open.
// Errors: as keepstate_store_open; closed if no pack was asked for.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_open_pack(std::uint32_t handle, const std::uint8_t* bytes,
                                                            std::uint32_t len, std::int32_t present) {
  OpenStore* s = Find(handle);
  if (s == nullptr) return Fail(Code::kInvalidArgument, "unknown store handle");
  if (!s->restoring || !s->restoring->needed()) return Fail(Code::kClosed, "no pack was asked for");
  std::optional<std::span<const std::uint8_t>> pack;
  if (present) pack = std::span<const std::uint8_t>(bytes, len);
  // A verification failure moves the session on; a stopping error comes
  // back from Finish through ContinueOpen.
  s->restoring->Add(pack).IgnoreError();
  return ContinueOpen(s);
}

// Forgets the store (uncommitted changes are dropped; JS commits first).
EMSCRIPTEN_KEEPALIVE void keepstate_store_destroy(std::uint32_t handle) { g_stores.erase(handle); }

EMSCRIPTEN_KEEPALIVE double keepstate_store_version(std::uint32_t handle) {
  OpenStore* s = Find(handle);
  return s ? static_cast<double>(s->based_on) : 0;
}
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_dirty(std::uint32_t handle) {
  OpenStore* s = Find(handle);
  return s && s->dirty() ? 1 : 0;
}
EMSCRIPTEN_KEEPALIVE double keepstate_store_count(std::uint32_t handle) {
  OpenStore* s = Find(handle);
  return s && s->store ? static_cast<double>(s->store->Count()) : 0;
}
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_store_page_size(std::uint32_t handle) {
  OpenStore* s = Find(handle);
  return s ? s->options.page_size : 0;
}

// The value of key into the output buffer. Errors: not-found,
// invalid-argument (key size), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_get(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  const std::string_view k = View(key, key_len);
  if (Status v = keepstate::engine::ValidateKey(k); !v.ok()) return Fail(v);
  if (in_txn) {
    if (!(*s)->txn) return Fail(Code::kClosed, "no transaction is open");
    return Done((*s)->txn->Get(k, &g_out));
  }
  return Done((*s)->store->Get(k, &g_out));
}

// 0 if key exists, not-found if not. Errors: invalid-argument, closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_has(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  const std::string_view k = View(key, key_len);
  if (Status v = keepstate::engine::ValidateKey(k); !v.ok()) return Fail(v);
  bool found;
  if (in_txn) {
    if (!(*s)->txn) return Fail(Code::kClosed, "no transaction is open");
    found = (*s)->txn->Contains(k);
  } else {
    found = (*s)->store->Contains(k);
  }
  return found ? 0 : static_cast<std::int32_t>(Code::kNotFound);
}

// Errors: invalid-argument (key or value size), busy (a transaction is open
// and in_txn is 0), quota (memory cannot grow), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_put(std::uint32_t handle, std::int32_t in_txn,
                                                      const std::uint8_t* key, std::uint32_t key_len,
                                                      const std::uint8_t* value, std::uint32_t value_len) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  const std::string_view k = View(key, key_len), v = View(value, value_len);
  if (in_txn) {
    if (!(*s)->txn) return Fail(Code::kClosed, "no transaction is open");
    return Done((*s)->txn->Put(k, v));
  }
  Status st = (*s)->store->Put(k, v);
  if (st.ok()) MarkChanged(*s);
  return Done(st);
}

// 0 if the key was deleted, not-found if it did not exist. Errors as put.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_delete(std::uint32_t handle, std::int32_t in_txn,
                                                         const std::uint8_t* key, std::uint32_t key_len) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  const std::string_view k = View(key, key_len);
  if (Status v = keepstate::engine::ValidateKey(k); !v.ok()) return Fail(v);
  Result<bool> existed = false;
  if (in_txn) {
    if (!(*s)->txn) return Fail(Code::kClosed, "no transaction is open");
    existed = (*s)->txn->Delete(k);
  } else {
    existed = (*s)->store->Delete(k);
    if (existed.ok() && *existed) MarkChanged(*s);
  }
  if (!existed.ok()) return Fail(existed.status());
  return *existed ? 0 : static_cast<std::int32_t>(Code::kNotFound);
}

// Entries in range into the output buffer: u32 count, then per entry u32 key
// length, u32 value length, key bytes, value bytes (little-endian).
// Errors: closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_scan(
    std::uint32_t handle, std::int32_t in_txn, const std::uint8_t* prefix, std::uint32_t prefix_len,
    std::int32_t has_prefix, const std::uint8_t* start, std::uint32_t start_len, const std::uint8_t* end,
    std::uint32_t end_len, std::int32_t has_end, double limit, std::int32_t reverse) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  if (in_txn && !(*s)->txn) return Fail(Code::kClosed, "no transaction is open");
  // The arguments may point into the scratch buffer; copy before g_out grows.
  const std::string p(View(prefix, prefix_len)), b(View(start, start_len)), e(View(end, end_len));
  std::string end_storage;
  const ScanOptions o = MakeScan(p, has_prefix != 0, b, e, has_end != 0, limit, reverse != 0, &end_storage);
  g_out.assign(4, '\0');
  std::uint32_t count = 0;
  auto append = [&](std::string_view k, std::string_view v) {
    AppendU32(&g_out, static_cast<std::uint32_t>(k.size()));
    AppendU32(&g_out, static_cast<std::uint32_t>(v.size()));
    g_out.append(k);
    g_out.append(v);
    ++count;
    return true;
  };
  if (in_txn) {
    (*s)->txn->Scan(o, append);
  } else {
    (*s)->store->Scan(o, append);
  }
  std::memcpy(g_out.data(), &count, 4);
  return 0;
}

// Opens the store's write transaction. Errors: busy (one is open), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_begin(std::uint32_t handle) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  Result<Txn> txn = (*s)->store->BeginWrite();
  if (!txn.ok()) return Fail(txn.status());
  (*s)->txn.emplace(std::move(*txn));
  return 0;
}

// Commits (commit = 1) or aborts the open transaction. Errors: closed (none
// open), quota (memory cannot grow; nothing applied).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_end(std::uint32_t handle, std::int32_t commit) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  OpenStore* st = *s;
  if (!st->txn) return Fail(Code::kClosed, "no transaction is open");
  Status result;
  const bool wrote = st->txn->pending_writes() > 0;
  if (commit) {
    result = st->txn->Commit();
  } else {
    st->txn->Abort();
  }
  st->txn.reset();
  if (commit && result.ok() && wrote) MarkChanged(st);
  return Done(result);
}

// Step 1 of a commit: captures the dirty pages into a plan (see
// keepstate_store_plan). Errors: busy (a commit is in flight, or a
// transaction is open), not-found (nothing to commit), closed, internal.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_capture(std::uint32_t handle, double now_ms) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  OpenStore* st = *s;
  if (st->txn) return Fail(Code::kBusy, "a transaction is open");
  if (st->plan) return Fail(Code::kBusy, "a commit is already in flight");
  if (!st->changed) return Fail(Code::kNotFound, "nothing to commit");
  Result<CommitPlan> plan = st->persister->Capture(st->store->arena(), static_cast<std::uint64_t>(now_ms));
  if (!plan.ok()) return Fail(plan.status());
  st->plan.emplace(std::move(*plan));
  st->changed = false;
  return 0;
}

// Describes the plan in flight as u32 words in the output buffer; returns
// their address (0 if no plan):
//   [put count, delete count, fresh line (clear the database first), 0,
//    version lo, version hi, base lo, base hi, staged bytes lo, hi]
//   then per put:    kind, key ptr, key len, bytes ptr, bytes len
//   then per delete: kind, key ptr, key len
// The pointers stay valid until keepstate_store_commit_done.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_store_plan(std::uint32_t handle) {
  OpenStore* s = Find(handle);
  if (s == nullptr || !s->plan) return 0;
  const CommitPlan& p = *s->plan;
  auto ptr = [](const void* x) { return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(x)); };
  g_out.clear();
  for (std::uint64_t v : {std::uint64_t{p.puts().size()}, std::uint64_t{p.deletes().size()},
                          std::uint64_t{s->fresh_line}, std::uint64_t{0}}) {
    AppendU32(&g_out, static_cast<std::uint32_t>(v));
  }
  for (std::uint64_t v : {p.version(), s->based_on, p.staged_bytes()}) {
    AppendU32(&g_out, static_cast<std::uint32_t>(v));
    AppendU32(&g_out, static_cast<std::uint32_t>(v >> 32));
  }
  for (const auto& r : p.puts()) {
    for (std::uint32_t v : {static_cast<std::uint32_t>(r.kind), ptr(r.key.data()),
                            static_cast<std::uint32_t>(r.key.size()), ptr(r.bytes.data()),
                            static_cast<std::uint32_t>(r.bytes.size())}) {
      AppendU32(&g_out, v);
    }
  }
  for (const auto& k : p.deletes()) {
    for (std::uint32_t v :
         {static_cast<std::uint32_t>(k.kind), ptr(k.key.data()), static_cast<std::uint32_t>(k.key.size())}) {
      AppendU32(&g_out, v);
    }
  }
  return ptr(g_out.data());
}

// Step 2, inside the commit's readwrite transaction: is the stored head
// (present = 0: none stored) still the one this store's state is based on?
// Writes the stored head's version to *actual_out (-1 if it cannot be
// decoded). Errors: conflict (another writer committed), closed.
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_check_head(std::uint32_t handle, const std::uint8_t* head,
                                                             std::uint32_t head_len, std::int32_t present,
                                                             double* actual_out) {
  OpenStore* s = Find(handle);
  if (s == nullptr || !s->plan) return Fail(Code::kClosed, "no commit is in flight");
  *actual_out = 0;
  if (present) {
    Result<keepstate::persistence::Head> h = DecodeHead({head, head_len});
    *actual_out = h.ok() ? static_cast<double>(h->version) : -1;
  }
  const bool same = present ? s->known_head && s->known_head->size() == head_len &&
                                  std::equal(head, head + head_len, s->known_head->data())
                            : !s->known_head.has_value();
  if (same) return 0;
  std::string actual = *actual_out < 0 ? std::string("an unreadable head")
                                       : "version " + std::to_string(static_cast<std::uint64_t>(*actual_out));
  return Fail(Code::kConflict, "another writer committed: the stored head is at " + actual +
                                   ", this store is based on version " + std::to_string(s->based_on));
}

// Step 3: code 0 = the transaction completed (the plan's version is now
// committed), otherwise it failed and the captured pages are dirty again.
// Errors: closed (no commit in flight).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_store_commit_done(std::uint32_t handle, std::int32_t code) {
  OpenStore* s = Find(handle);
  if (s == nullptr || !s->plan) return Fail(Code::kClosed, "no commit is in flight");
  CommitPlan plan = std::move(*s->plan);
  s->plan.reset();
  if (code == 0) {
    for (const auto& r : plan.puts()) {
      if (r.kind == RecordKind::kHead) s->known_head.emplace(r.bytes.begin(), r.bytes.end());
    }
    s->based_on = plan.version();
    s->fresh_line = false;
    s->persister->Succeeded(std::move(plan));
  } else {
    s->persister->Failed(std::move(plan), s->store->arena());
    s->changed = true;
  }
  return 0;
}

// Autosave delay after the first uncommitted change; ms <= 0 turns it off.
EMSCRIPTEN_KEEPALIVE void keepstate_store_set_autosave(std::uint32_t handle, double ms) {
  if (OpenStore* s = Find(handle)) s->autosave_ms = ms;
}

// The next autosave request of any store: returns its completion token (0:
// none) and writes the store's handle to *store_out. JS commits that store
// and completes the token with the commit's status code.
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_autosave_take(std::uint32_t* store_out) {
  if (g_autosave_requests.empty()) return 0;
  const AutosaveRequest r = g_autosave_requests.front();
  g_autosave_requests.pop_front();
  *store_out = r.store;
  return r.token;
}

// Starts the mutator `name` (registered with keepstate::sdk) as a fiber on
// this store with a copy of args; writes the call id (never 0) to *id_out.
// The fiber runs when JS next drives the scheduler; its outcome comes back
// through keepstate_call_take. Errors: invalid-argument (no mutator of that
// name), closed (bad handle, store not open).
EMSCRIPTEN_KEEPALIVE std::int32_t keepstate_call(std::uint32_t handle, const std::uint8_t* name,
                                                 std::uint32_t name_len, const std::uint8_t* args,
                                                 std::uint32_t args_len, std::uint32_t* id_out) {
  Result<OpenStore*> s = Usable(handle);
  if (!s.ok()) return Fail(s.status());
  Result<std::uint32_t> id = g_calls.Start(View(name, name_len), handle, {args, args_len});
  if (!id.ok()) return Fail(id.status());
  *id_out = *id;
  return 0;
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
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_scheduler() {
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(sched::ToC(&g_scheduler)));
}
EMSCRIPTEN_KEEPALIVE std::uint32_t keepstate_scheduler_live_fibers() {
  return static_cast<std::uint32_t>(g_scheduler.live_fibers());
}

}  // extern "C"

// Every listed function exists with C linkage (a missing one fails here,
// before the linker's "undefined exported symbol").
#define KEEPSTATE_CHECK_EXPORT(name, ret, params) \
  static_assert(sizeof(&::name) > 0, #name " is listed in abi.h");
KEEPSTATE_ABI_FUNCTIONS(KEEPSTATE_CHECK_EXPORT)
#undef KEEPSTATE_CHECK_EXPORT
