// Wire encoding of the C ABI: what exports.cc writes into the output buffer
// for JS (the open protocol's JSON, an import's description, the commit plan,
// scan entries) and how it
// reads the ABI's scan arguments, laid out as abi.h's KEEPSTATE_WIRE_LAYOUTS
// say (the TypeScript side reads them through the generated WIRE).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/engine/store.h"
#include "keepstate/persistence/format.h"
#include "keepstate/persistence/record_store.h"
#include "keepstate/persistence/session.h"
#include "keepstate/persistence/snapshot_file.h"
#include "keepstate/replica/replica.h"

namespace keepstate::wire {

// The address of `p` in linear memory, as JS sees it.
std::uint32_t Address(const void* p);

// {"need": "<pack key>", "then": "<pack key>"?, "ahead": ["<pack key>", ...]?, "bytes": N}:
// the pack JS reads next, and the ones needed after it, in order (then = ahead[0]), which JS
// reads meanwhile; `bytes`: the sizes of `need` and every later pack (the manifest's), for
// the open's progress.
void EncodePackRequest(const persistence::PackId& need, const std::vector<persistence::PackId>& ahead,
                       std::uint64_t bytes, std::string* out);
// {"restored": V, "fresh": bool, "inPlace": bool, "failures": [{version, code, message}]}
// (inPlace: the state is staged, to be applied to the base, keepstate_store_adopt_in_place).
void EncodeOpenReport(const persistence::OpenReport& report, std::string* out);
// An open's progress: the pack request while it needs one, else the open report.
void EncodeOpenProgress(const replica::OpenProgress& progress, std::string* out);
// A synced store's meta: {"client": "...", "version": N, "lastMutationId": N, "nextMutationId": N}.
void EncodeSyncMeta(const replica::SyncMeta& meta, std::string* out);
// A pulled entry: a key and its value (nullopt: absent), viewing the decoded buffer.
using PulledEntry = std::pair<std::string_view, std::optional<std::string_view>>;
// keepstate_sync_apply's entries: u32 key length, key, i32 value length (-1: absent), value,
// repeated. Errors: InvalidArgument (truncated; a negative length other than -1).
Result<std::vector<PulledEntry>> DecodePulledEntries(std::span<const std::uint8_t> bytes);
// The batch as PLAN_* u32 words; its pointers stay valid while the batch's plan lives.
void EncodePlan(const persistence::WriteBatch& batch, std::string* out);
// A verified snapshot file (keepstate_import_finish): {"pageSize": N, "pageCount": N,
// "schemaVersion": N, "entries": N, "storeVersion": N, "createdAt": N}.
void EncodeImportInfo(const persistence::SnapshotFileInfo& info, std::string* out);

// Scan results: Begin, then one Append per entry, then Finish (SCAN_*).
void BeginScan(std::string* out);
void AppendScanEntry(std::string_view key, std::string_view value, std::string* out);
void FinishScan(std::uint32_t count, std::string* out);
// Change lists (keepstate_store_take_changes, keepstate_store_diff): the scan
// layout, a key that no longer exists with value length CHANGE_DELETED.
void AppendChange(std::string_view key, std::optional<std::string_view> value, std::string* out);

// A scan result or change list written into *out: begun when constructed,
// one Entry or Change per item, then Finish (which writes the count).
class ScanWriter {
 public:
  explicit ScanWriter(std::string* out) : out_(out) { BeginScan(out); }
  bool Entry(std::string_view key, std::string_view value) {
    AppendScanEntry(key, value, out_);
    ++count_;
    return true;
  }
  void Change(std::string_view key, std::optional<std::string_view> value) {
    AppendChange(key, value, out_);
    ++count_;
  }
  void Finish() { FinishScan(count_, out_); }

 private:
  std::string* out_;
  std::uint32_t count_ = 0;
};

// The ranges of keepstate_store_watch (WATCH_*). InvalidArgument if the
// bytes do not hold exactly such a list.
Result<std::vector<engine::KeyRange>> DecodeWatchRanges(std::string_view bytes);
// The scan the ABI's arguments ask for: prefix bounds intersected with
// [start, end); `end_storage` holds the prefix's computed end.
engine::ScanOptions ScanFromArgs(std::string_view prefix, bool has_prefix, std::string_view start,
                                 std::string_view end, bool has_end, double limit, bool reverse,
                                 std::string* end_storage);

}  // namespace keepstate::wire
