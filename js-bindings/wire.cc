// Wire encoding of the C ABI: see wire.h.
#include "wire.h"

#include <cstddef>
#include <cstring>

#include "abi.h"
#include "keepstate/scheduler/c_api.h"

namespace keepstate::wire {
namespace {

// The layouts of abi.h, as this file writes them.
#define KEEPSTATE_X(name, value, meaning) constexpr std::uint32_t k##name = value;
KEEPSTATE_WIRE_LAYOUTS(KEEPSTATE_X)
#undef KEEPSTATE_X
// The scheduler's run result is written by scheduler/c_api, read by driver.ts.
static_assert(kRUN_RESULT_BYTES == sizeof(KeepstateRunResult));
static_assert(kRUN_HAS_READY_WORK == offsetof(KeepstateRunResult, has_ready_work));
static_assert(kRUN_HAS_TIMER == offsetof(KeepstateRunResult, has_timer));
static_assert(kRUN_TIMER_DELAY_MS == offsetof(KeepstateRunResult, next_timer_delay_ms));
// EncodePlan writes the header words in this order, then 5 words per put and 3 per delete.
static_assert(kPLAN_PUT_COUNT == 0 && kPLAN_DELETE_COUNT == 1 && kPLAN_CLEAR_FIRST == 2 &&
              kPLAN_HAS_EXPECTED_HEAD == 3 && kPLAN_EXPECTED_HEAD_PTR == 4 && kPLAN_EXPECTED_HEAD_LEN == 5 &&
              kPLAN_HEADER_WORDS == 6);
static_assert(kPLAN_PUT_WORDS == 5 && kPLAN_DELETE_WORDS == 3);
static_assert(kSCAN_ENTRY_HEADER_BYTES == 8);
static_assert(kCHANGE_DELETED > keepstate::engine::kMaxValueSize, "no value can be that long");
static_assert(kMAX_KEY_BYTES == keepstate::engine::kMaxKeySize && kMAX_VALUE_BYTES == keepstate::engine::kMaxValueSize &&
                  kMAX_ARGS_BYTES == kMAX_VALUE_BYTES,
              "JS checks the engine's own limits; mutator args are bounded as values are");
static_assert(kMIN_PAGE_SIZE == keepstate::engine::kMinPageSize && kMAX_PAGE_SIZE == keepstate::engine::kMaxPageSize);
// The head record and manifest keys are persistence's format (format.h).
static_assert(kHEAD_RECORD_BYTES == sizeof(persistence::HeadLayout));
static_assert(kHEAD_MAGIC == persistence::kHeadMagic);
static_assert(kHEAD_MAGIC_OFFSET == offsetof(persistence::HeadLayout, magic));
static_assert(kHEAD_FORMAT_VERSION_OFFSET == offsetof(persistence::HeadLayout, format_version));
static_assert(kHEAD_VERSION_OFFSET == offsetof(persistence::HeadLayout, version));
static_assert(kHEAD_BASE_VERSION_OFFSET == offsetof(persistence::HeadLayout, base_version));
static_assert(kHEAD_WRITER_ID_OFFSET == offsetof(persistence::HeadLayout, writer_id));
static_assert(kHEAD_MANIFEST_CHECK_OFFSET == offsetof(persistence::HeadLayout, manifest_check));
static_assert(kHEAD_CHECKSUM_OFFSET == offsetof(persistence::HeadLayout, checksum));
static_assert(kMANIFEST_KEY_HEX_DIGITS == persistence::kManifestKeyDigits);

void AppendU32(std::uint32_t v, std::string* out) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

void AppendJsonString(std::string_view s, std::string* out) {
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

}  // namespace

std::uint32_t Address(const void* p) { return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(p)); }

void EncodePackRequest(const persistence::PackId& need, const std::vector<persistence::PackId>& ahead,
                       std::uint64_t bytes, std::string* out) {
  *out = "{\"need\":";
  AppendJsonString(persistence::PackKey(need), out);
  if (!ahead.empty()) {
    *out += ",\"then\":";
    AppendJsonString(persistence::PackKey(ahead.front()), out);
    *out += ",\"ahead\":[";
    for (std::size_t i = 0; i < ahead.size(); ++i) {
      if (i) *out += ",";
      AppendJsonString(persistence::PackKey(ahead[i]), out);
    }
    *out += "]";
  }
  *out += ",\"bytes\":" + std::to_string(bytes) + "}";
}

void EncodeOpenReport(const persistence::OpenReport& report, std::string* out) {
  *out = "{\"restored\":" + std::to_string(report.restored_version) +
         ",\"fresh\":" + (report.fresh_line ? "true" : "false") +
         ",\"inPlace\":" + (report.in_place ? "true" : "false") + ",\"failures\":[";
  for (std::size_t i = 0; i < report.failures.size(); ++i) {
    const persistence::VersionFailure& f = report.failures[i];
    *out += (i ? ",{\"version\":" : "{\"version\":") + std::to_string(f.version) + ",\"code\":";
    AppendJsonString(CodeName(f.status.code()), out);
    *out += ",\"message\":";
    AppendJsonString(f.status.message(), out);
    *out += "}";
  }
  *out += "]}";
}

void EncodeOpenProgress(const replica::OpenProgress& progress, std::string* out) {
  if (progress.need) {
    EncodePackRequest(*progress.need, progress.ahead, progress.bytes, out);
  } else {
    EncodeOpenReport(progress.report, out);
  }
}

void EncodeSyncMeta(const replica::SyncMeta& m, std::string* out) {
  // The client id is [A-Za-z0-9_-] (Replica::SyncInit checks it): no escaping needed.
  *out = "{\"client\":\"" + m.client + "\",\"version\":" + std::to_string(m.server_version) +
         ",\"lastMutationId\":" + std::to_string(m.last_mutation_id) +
         ",\"nextMutationId\":" + std::to_string(m.next_mutation_id) + "}";
}

Result<std::vector<PulledEntry>> DecodePulledEntries(std::span<const std::uint8_t> bytes) {
  std::vector<PulledEntry> entries;
  const char* p = reinterpret_cast<const char*>(bytes.data());
  std::size_t at = 0;
  auto word = [&](std::uint32_t* w) {
    if (bytes.size() - at < 4) return false;
    std::memcpy(w, p + at, 4);
    at += 4;
    return true;
  };
  auto truncated = [] { return Status::InvalidArgument("pulled entries are truncated"); };
  while (at < bytes.size()) {
    std::uint32_t key_size = 0, value_word = 0;
    if (!word(&key_size) || key_size > bytes.size() - at) return truncated();
    const std::string_view key(p + at, key_size);
    at += key_size;
    if (!word(&value_word)) return truncated();
    if (value_word == 0xFFFFFFFFu) {
      entries.emplace_back(key, std::nullopt);
      continue;
    }
    if (value_word > bytes.size() - at) return truncated();
    entries.emplace_back(key, std::string_view(p + at, value_word));
    at += value_word;
  }
  return entries;
}

void EncodeImportInfo(const persistence::SnapshotFileInfo& i, std::string* out) {
  *out = "{\"pageSize\":" + std::to_string(i.page_size) + ",\"pageCount\":" + std::to_string(i.page_count) +
         ",\"schemaVersion\":" + std::to_string(i.user_version) + ",\"entries\":" + std::to_string(i.entry_count) +
         ",\"storeVersion\":" + std::to_string(i.store_version) + ",\"createdAt\":" + std::to_string(i.created_unix_ms) + "}";
}

void EncodePlan(const persistence::WriteBatch& batch, std::string* out) {
  out->clear();
  AppendU32(static_cast<std::uint32_t>(batch.puts.size()), out);
  AppendU32(static_cast<std::uint32_t>(batch.deletes.size()), out);
  AppendU32(batch.clear_first ? 1 : 0, out);
  AppendU32(batch.expected_head ? 1 : 0, out);
  AppendU32(batch.expected_head ? Address(batch.expected_head->data()) : 0, out);
  AppendU32(batch.expected_head ? static_cast<std::uint32_t>(batch.expected_head->size()) : 0, out);
  for (const persistence::Record& r : batch.puts) {
    for (std::uint32_t v : {static_cast<std::uint32_t>(r.kind), Address(r.key.data()), static_cast<std::uint32_t>(r.key.size()),
                            Address(r.bytes.data()), static_cast<std::uint32_t>(r.bytes.size())}) {
      AppendU32(v, out);
    }
  }
  for (const persistence::RecordKey& k : batch.deletes) {
    for (std::uint32_t v : {static_cast<std::uint32_t>(k.kind), Address(k.key.data()), static_cast<std::uint32_t>(k.key.size())}) {
      AppendU32(v, out);
    }
  }
}

void BeginScan(std::string* out) { out->assign(kSCAN_COUNT_BYTES, '\0'); }

void AppendScanEntry(std::string_view key, std::string_view value, std::string* out) {
  AppendU32(static_cast<std::uint32_t>(key.size()), out);
  AppendU32(static_cast<std::uint32_t>(value.size()), out);
  out->append(key);
  out->append(value);
}

void AppendChange(std::string_view key, std::optional<std::string_view> value, std::string* out) {
  AppendU32(static_cast<std::uint32_t>(key.size()), out);
  AppendU32(value ? static_cast<std::uint32_t>(value->size()) : static_cast<std::uint32_t>(kCHANGE_DELETED), out);
  out->append(key);
  if (value) out->append(*value);
}

Result<std::vector<engine::KeyRange>> DecodeWatchRanges(std::string_view bytes) {
  std::size_t at = 0;
  auto u32 = [&](std::uint32_t* v) {
    if (bytes.size() - at < 4) return false;
    std::memcpy(v, bytes.data() + at, 4);
    at += 4;
    return true;
  };
  auto take = [&](std::uint32_t n, std::string* out) {
    if (bytes.size() - at < n) return false;
    out->assign(bytes.data() + at, n);
    at += n;
    return true;
  };
  const Status bad = Status::InvalidArgument("watch: malformed range list");
  std::uint32_t count;
  if (!u32(&count)) return bad;
  std::vector<engine::KeyRange> ranges;
  for (std::uint32_t i = 0; i < count; ++i) {
    engine::KeyRange r;
    std::uint32_t n;
    if (!u32(&n) || !take(n, &r.start) || !u32(&n)) return bad;
    r.has_end = n != kWATCH_UNBOUNDED;
    if (r.has_end && !take(n, &r.end)) return bad;
    ranges.push_back(std::move(r));
  }
  if (at != bytes.size()) return bad;
  return ranges;
}

void FinishScan(std::uint32_t count, std::string* out) { std::memcpy(out->data(), &count, kSCAN_COUNT_BYTES); }

engine::ScanOptions ScanFromArgs(std::string_view prefix, bool has_prefix, std::string_view start,
                                 std::string_view end, bool has_end, double limit, bool reverse,
                                 std::string* end_storage) {
  engine::ScanOptions o;
  if (has_prefix && !prefix.empty()) o = engine::PrefixScan(prefix, end_storage);
  if (engine::CompareKeys(start, o.start) > 0) o.start = start;
  if (has_end && (!o.has_end || engine::CompareKeys(end, o.end) < 0)) {
    o.end = end;
    o.has_end = true;
  }
  o.reverse = reverse;
  o.limit = limit > 0 ? static_cast<std::uint64_t>(limit) : 0;
  return o;
}

}  // namespace keepstate::wire
