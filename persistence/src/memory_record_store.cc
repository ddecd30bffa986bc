// MemoryRecordStore: see record_store.h (the head check it runs: head_check.h).
//
// Invariant: Apply() validates everything that can fail (head check,
// injected failure, record kinds) before its first mutation, so a failed
// batch leaves the maps untouched.
#include <algorithm>
#include <string>

#include "keepstate/persistence/record_store.h"

namespace keepstate::persistence {
namespace {

bool ValidKind(RecordKind kind) { return static_cast<int>(kind) < kRecordKindCount; }

}  // namespace

Result<std::vector<std::uint8_t>> MemoryRecordStore::Get(RecordKind kind, std::string_view key) {
  if (!ValidKind(kind)) return Status::InvalidArgument("bad record kind");
  const Map& m = map(kind);
  auto it = m.find(key);
  if (it == m.end() || Unread(kind, key)) {
    return Status::NotFound(std::string(RecordKindName(kind)) + "/" + std::string(key));
  }
  return it->second;
}

Status MemoryRecordStore::GetInto(RecordKind kind, std::string_view key,
                                  std::vector<std::uint8_t>& out) {
  if (!ValidKind(kind)) return Status::InvalidArgument("bad record kind");
  const Map& m = map(kind);
  auto it = m.find(key);
  if (it == m.end() || Unread(kind, key)) {
    return Status::NotFound(std::string(RecordKindName(kind)) + "/" + std::string(key));
  }
  out.assign(it->second.begin(), it->second.end());  // keeps out's capacity
  return Status::Ok();
}

std::optional<std::span<const std::uint8_t>> MemoryRecordStore::View(RecordKind kind, std::string_view key) {
  if (!ValidKind(kind)) return std::nullopt;
  const Map& m = map(kind);
  auto it = m.find(key);
  if (it == m.end() || Unread(kind, key)) return std::nullopt;
  return std::span<const std::uint8_t>(it->second);
}

Result<std::vector<std::string>> MemoryRecordStore::List(RecordKind kind) {
  if (!ValidKind(kind)) return Status::InvalidArgument("bad record kind");
  std::vector<std::string> keys;
  keys.reserve(map(kind).size());
  for (const auto& [k, v] : map(kind)) keys.push_back(k);
  return keys;
}

Status MemoryRecordStore::Apply(const WriteBatch& batch) {
  for (const Record& r : batch.puts) {
    if (!ValidKind(r.kind)) return Status::InvalidArgument("bad record kind");
  }
  for (const RecordKey& k : batch.deletes) {
    if (!ValidKind(k.kind)) return Status::InvalidArgument("bad record kind");
  }
  const Map& heads = map(RecordKind::kHead);
  std::optional<std::span<const std::uint8_t>> stored;
  if (auto it = heads.find(kHeadKey); it != heads.end()) stored = std::span<const std::uint8_t>(it->second);
  KEEPSTATE_RETURN_IF_ERROR(CheckStoredHead(batch, stored));
  const std::size_t records = batch.puts.size() + batch.deletes.size();
  if (fail_after_ && records > *fail_after_) {
    return Status::OutOfSpace("injected failure: batch of " + std::to_string(records) +
                              " records aborted after " + std::to_string(*fail_after_));
  }
  if (batch.clear_first) {
    for (Map& m : maps_) m.clear();
    unread_.clear();
  }
  for (const Record& r : batch.puts) {
    map(r.kind)[r.key].assign(r.bytes.begin(), r.bytes.end());
    unread_.erase(RecordKey{r.kind, r.key});
  }
  for (const RecordKey& k : batch.deletes) {
    map(k.kind).erase(k.key);
    unread_.erase(k);
  }
  return Status::Ok();
}

std::vector<std::uint8_t>* MemoryRecordStore::Mutable(RecordKind kind, const std::string& key) {
  auto it = map(kind).find(key);
  return it == map(kind).end() ? nullptr : &it->second;
}

bool MemoryRecordStore::Erase(RecordKind kind, const std::string& key) {
  unread_.erase(RecordKey{kind, key});
  return map(kind).erase(key) > 0;
}

void MemoryRecordStore::Put(RecordKind kind, const std::string& key,
                            std::vector<std::uint8_t> bytes) {
  map(kind)[key] = std::move(bytes);
  unread_.erase(RecordKey{kind, key});
}

void MemoryRecordStore::PutUnread(RecordKind kind, const std::string& key) {
  map(kind)[key].clear();
  unread_.insert(RecordKey{kind, key});
}

bool MemoryRecordStore::Unread(RecordKind kind, std::string_view key) {
  if (unread_.empty() || !unread_.count(RecordKey{kind, std::string(key)})) return false;
  unread_requested_ = true;
  return true;
}

std::uint64_t MemoryRecordStore::StoredBytes(RecordKind kind) const {
  std::uint64_t n = 0;
  for (const auto& [k, v] : map(kind)) n += v.size();
  return n;
}

std::uint64_t MemoryRecordStore::StoredBytes() const {
  std::uint64_t n = 0;
  for (int i = 0; i < kRecordKindCount; ++i) n += StoredBytes(static_cast<RecordKind>(i));
  return n;
}

}  // namespace keepstate::persistence
