// A synced store's journal in its own state (docs/sync.md; replica.h,
// "Sync"). Everything here is one engine transaction, so the journal and the
// writes it describes are committed, copied, stashed and restored together.
#include <algorithm>
#include <cstring>
#include <string>

#include "keepstate/replica/replica.h"
#include "keepstate/sdk/builtins.h"

namespace keepstate::replica {
namespace {

using engine::Store;
using engine::Txn;

constexpr std::size_t kMaxClientId = 64;

void PutU64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
std::uint64_t GetU64(std::string_view in, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[at + i])} << (8 * i);
  return v;
}

// meta: u64 server version, u64 last mutation id, u64 next mutation id (little-endian), client id.
std::string EncodeMeta(const SyncMeta& m) {
  std::string out;
  PutU64(out, m.server_version);
  PutU64(out, m.last_mutation_id);
  PutU64(out, m.next_mutation_id);
  return out + m.client;
}
Result<SyncMeta> DecodeMeta(std::string_view b) {
  if (b.size() < 24 || b.size() > 24 + kMaxClientId) return Status::Corruption("the sync meta record does not decode");
  return SyncMeta{GetU64(b, 0), GetU64(b, 8), GetU64(b, 16), std::string(b.substr(24))};
}

// A mutation's key: the prefix, then the id big-endian (keys sort by id).
std::string MutationKey(std::uint64_t id) {
  std::string key(kSyncMutationPrefix);
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(id >> (8 * i)));
  return key;
}
std::uint64_t MutationId(std::string_view key) {
  std::uint64_t id = 0;
  for (char c : key.substr(kSyncMutationPrefix.size())) id = id << 8 | static_cast<unsigned char>(c);
  return id;
}
// A mutation's record: u32 little-endian name length, the name, the args.
std::string EncodeMutation(std::string_view name, std::span<const std::uint8_t> args) {
  std::string out;
  const auto n = static_cast<std::uint32_t>(name.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  out.append(name);
  out.append(reinterpret_cast<const char*>(args.data()), args.size());
  return out;
}

bool ValidClient(std::string_view id) {
  if (id.size() < 8 || id.size() > kMaxClientId) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Every key starting with `prefix` (collected: the caller writes while it walks them).
std::vector<std::string> KeysWith(const Store& store, std::string_view prefix) {
  std::string end;
  const engine::ScanOptions range = engine::PrefixScan(prefix, &end);
  std::vector<std::string> keys;
  store.Scan(range, [&](std::string_view k, std::string_view) { return keys.emplace_back(k), true; });
  return keys;
}

// Appends (name, args) to the journal inside `txn`; the id.
Result<std::uint64_t> JournalIn(Txn& txn, std::string_view name, std::span<const std::uint8_t> args) {
  std::string bytes;
  KEEPSTATE_RETURN_IF_ERROR(txn.Get(kSyncMeta, &bytes));
  KEEPSTATE_ASSIGN_OR_RETURN(SyncMeta meta, DecodeMeta(bytes));
  const std::uint64_t id = meta.next_mutation_id++;
  KEEPSTATE_RETURN_IF_ERROR(txn.Put(MutationKey(id), EncodeMutation(name, args)));
  KEEPSTATE_RETURN_IF_ERROR(txn.Put(kSyncMeta, EncodeMeta(meta)));
  return id;
}

std::span<const std::uint8_t> Bytes(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

}  // namespace

void Replica::RefreshSync() {
  synced_ = store_ && store_->Contains(kSyncMeta);
  if (store_) store_->SetWriteMarks(synced_ ? std::string(kSyncMarkPrefix) : std::string());
}

Status Replica::SyncInit(std::string_view client) {
  if (!open()) return Status::Closed("the store is not open");
  if (!ValidClient(client)) {
    return Status::InvalidArgument("a sync client id is 8 to 64 characters of [A-Za-z0-9_-]");
  }
  if (synced_) {
    KEEPSTATE_ASSIGN_OR_RETURN(SyncMeta meta, SyncState());
    if (meta.client == client) return Status::Ok();
    return Status::Conflict("the store is synced as client " + meta.client);
  }
  if (txn_) return Status::Busy("a transaction is open");
  // What the store held before it synced goes to the server as puts: local
  // work is never dropped by the first pull.
  std::vector<std::pair<std::string, std::string>> entries;
  store_->Scan({}, [&](std::string_view k, std::string_view v) {
    if (Reserved(k)) return false;
    entries.emplace_back(k, v);
    return true;
  });
  KEEPSTATE_ASSIGN_OR_RETURN(Txn txn, store_->BeginWrite());
  KEEPSTATE_RETURN_IF_ERROR(txn.Put(kSyncMeta, EncodeMeta(SyncMeta{0, 0, 1, std::string(client)})));
  std::string args;
  for (const auto& [k, v] : entries) {
    args.assign(4, '\0');
    const auto n = static_cast<std::uint32_t>(k.size());
    std::memcpy(args.data(), &n, 4);
    args.append(k).append(v);
    KEEPSTATE_RETURN_IF_ERROR(JournalIn(txn, sdk::kPutMutation, Bytes(args)).status());
    KEEPSTATE_RETURN_IF_ERROR(txn.Put(std::string(kSyncMarkPrefix) + k, ""));
  }
  KEEPSTATE_RETURN_IF_ERROR(txn.Commit());
  changed_ = true;
  RefreshSync();
  return Status::Ok();
}

Result<SyncMeta> Replica::SyncState() const {
  if (!open()) return Status::Closed("the store is not open");
  std::string bytes;
  Status s = store_->Get(kSyncMeta, &bytes);
  if (s.IsNotFound()) return Status::NotFound("the store is not synced");
  KEEPSTATE_RETURN_IF_ERROR(s);
  return DecodeMeta(bytes);
}

Result<std::uint64_t> Replica::Journal(std::string_view name, std::span<const std::uint8_t> args) {
  if (!open()) return Status::Closed("the store is not open");
  if (!synced_) return Status::Unsupported("the store is not synced");
  if (txn_) return Status::Busy("a transaction is open");
  KEEPSTATE_ASSIGN_OR_RETURN(Txn txn, store_->BeginWrite());
  KEEPSTATE_ASSIGN_OR_RETURN(std::uint64_t id, JournalIn(txn, name, args));
  KEEPSTATE_RETURN_IF_ERROR(txn.Commit());
  changed_ = true;
  return id;
}

Status Replica::WriteSynced(std::string_view key, std::optional<std::string_view> value) {
  if (Reserved(key)) return Status::InvalidArgument("keys starting with byte 0xFF are keepstate's");
  std::string args;
  if (value) {
    args.assign(4, '\0');
    const auto n = static_cast<std::uint32_t>(key.size());
    std::memcpy(args.data(), &n, 4);
    args.append(key).append(*value);
  } else {
    args.assign(key);
  }
  KEEPSTATE_ASSIGN_OR_RETURN(Txn txn, store_->BeginWrite());
  KEEPSTATE_RETURN_IF_ERROR(JournalIn(txn, value ? sdk::kPutMutation : sdk::kDeleteMutation, Bytes(args)).status());
  if (value) {
    KEEPSTATE_RETURN_IF_ERROR(txn.Put(key, *value));
  } else {
    KEEPSTATE_RETURN_IF_ERROR(txn.Delete(key).status());
  }
  KEEPSTATE_RETURN_IF_ERROR(txn.Commit());
  changed_ = true;
  return Status::Ok();
}

Status Replica::SyncPending(
    std::uint64_t after,
    const std::function<bool(std::uint64_t, std::string_view, std::span<const std::uint8_t>)>& fn) const {
  if (!open()) return Status::Closed("the store is not open");
  const std::string from = MutationKey(after + 1);
  std::string end;
  engine::ScanOptions range = engine::PrefixScan(kSyncMutationPrefix, &end);
  if (after + 1 != 0) range.start = from;
  Status bad;
  store_->Scan(range, [&](std::string_view k, std::string_view v) {
    std::uint32_t n = 0;
    if (k.size() != kSyncMutationPrefix.size() + 8 || v.size() < 4 || (std::memcpy(&n, v.data(), 4), n > v.size() - 4)) {
      bad = Status::Corruption("a journaled mutation does not decode");
      return false;
    }
    return fn(MutationId(k), v.substr(4, n), Bytes(v.substr(4 + n)));
  });
  return bad;
}

Status Replica::SyncMarked(const std::function<void(std::string_view)>& fn) const {
  if (!open()) return Status::Closed("the store is not open");
  for (const std::string& k : KeysWith(*store_, kSyncMarkPrefix)) fn(std::string_view(k).substr(kSyncMarkPrefix.size()));
  return Status::Ok();
}

Status Replica::ApplyPull(std::uint64_t version, std::uint64_t last_mutation_id,
                          std::span<const std::pair<std::string_view, std::optional<std::string_view>>> entries) {
  if (!open()) return Status::Closed("the store is not open");
  if (!synced_) return Status::Unsupported("the store is not synced");
  if (txn_) return Status::Busy("a transaction is open");
  KEEPSTATE_ASSIGN_OR_RETURN(SyncMeta meta, SyncState());
  // The server's values are not local work: written without marks.
  store_->SetWriteMarks({});
  auto apply = [&]() -> Status {
    KEEPSTATE_ASSIGN_OR_RETURN(Txn txn, store_->BeginWrite());
    for (const auto& [key, value] : entries) {
      if (Reserved(key)) return Status::InvalidArgument("a pulled key starts with byte 0xFF (keepstate's)");
      if (value) {
        KEEPSTATE_RETURN_IF_ERROR(txn.Put(key, *value));
      } else {
        KEEPSTATE_RETURN_IF_ERROR(txn.Delete(key).status());
      }
    }
    for (const std::string& k : KeysWith(*store_, kSyncMarkPrefix)) KEEPSTATE_RETURN_IF_ERROR(txn.Delete(k).status());
    for (const std::string& k : KeysWith(*store_, kSyncMutationPrefix)) {
      if (MutationId(k) > last_mutation_id) break;
      KEEPSTATE_RETURN_IF_ERROR(txn.Delete(k).status());
    }
    meta.server_version = version;
    meta.last_mutation_id = std::max(meta.last_mutation_id, last_mutation_id);
    meta.next_mutation_id = std::max(meta.next_mutation_id, meta.last_mutation_id + 1);
    KEEPSTATE_RETURN_IF_ERROR(txn.Put(kSyncMeta, EncodeMeta(meta)));
    return txn.Commit();
  };
  const Status s = apply();
  RefreshSync();
  if (s.ok()) changed_ = true;
  return s;
}

}  // namespace keepstate::replica
