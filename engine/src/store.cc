// Store: the engine's public face over one arena and its B+tree (point
// reads and writes, batched lookups, scans) and the gate for writes. See
// store.h for the concurrency model.
//
// Invariant: while write_open_, every write other than the open Txn's returns
// Busy (CheckWritable); after Close(), reads find nothing and writes return
// Closed. The transactions and their write buffer are in txn.cc.
#include <algorithm>
#include <cassert>

#include "keepstate/engine/store.h"

namespace keepstate::engine {

Result<std::unique_ptr<Store>> Store::Create(const StoreOptions& options) {
  KEEPSTATE_ASSIGN_OR_RETURN(Arena arena, Arena::Create(options.page_size));
  return std::unique_ptr<Store>(new Store(std::move(arena)));
}

Result<std::unique_ptr<Store>> Store::FromArena(Arena arena, bool verify) {
  std::unique_ptr<Store> store(new Store(std::move(arena)));
  if (verify) KEEPSTATE_RETURN_IF_ERROR(store->tree_.Check());
  return store;
}

Status Store::CheckWritable() const {
  if (closed_) return Status::Closed("store is closed");
  if (write_open_) {
    return Status::Busy(
        "a write transaction is open; a transaction must not suspend (co_await) "
        "between BeginWrite and Commit");
  }
  return Status::Ok();
}

Status Store::Get(std::string_view key, std::string* value) const {
  if (closed_) return Status::Closed("store is closed");
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  return tree_.Get(key, value);
}

void Store::GetMany(const std::string_view* keys, std::size_t n, std::string* values,
                    Status* statuses) const {
  for (std::size_t begin = 0; begin < n; begin += BTree::kMaxBatch) {
    const std::size_t m = std::min(BTree::kMaxBatch, n - begin);
    bool valid = !closed_;
    for (std::size_t i = begin; i < begin + m; ++i) {
      statuses[i] = closed_ ? Status::Closed("store is closed") : ValidateKey(keys[i]);
      valid = valid && statuses[i].ok();
    }
    if (valid) {
      tree_.GetMany(keys + begin, m, values + begin, statuses + begin);
    } else {
      for (std::size_t i = begin; i < begin + m; ++i) {
        if (statuses[i].ok()) statuses[i] = tree_.Get(keys[i], &values[i]);
      }
    }
  }
}

bool Store::Contains(std::string_view key) const { return !closed_ && tree_.Contains(key); }

void Store::Locate(const std::string_view* keys, std::size_t n, LeafHint* hints) const {
  if (closed_) {
    for (std::size_t i = 0; i < n; ++i) hints[i] = LeafHint{};
    return;
  }
  tree_.Locate(keys, n, hints);
  for (std::size_t i = 0; i < n; ++i) {
    if (!ValidateKey(keys[i]).ok()) hints[i] = LeafHint{};
  }
}

Status Store::Put(std::string_view key, std::string_view value) {
  KEEPSTATE_RETURN_IF_ERROR(CheckWritable());
  // A store that keeps write marks writes through a transaction: the mark
  // and the write land together or not at all.
  if (!mark_prefix_.empty()) return WriteMarked(key, value);
  KEEPSTATE_RETURN_IF_ERROR(tree_.Put(key, value));
  changes_.Record(key);
  tree_.Shrink();  // a smaller value may have freed an overflow chain
  return Status::Ok();
}

Result<bool> Store::Delete(std::string_view key) {
  KEEPSTATE_RETURN_IF_ERROR(CheckWritable());
  if (!mark_prefix_.empty()) {
    const bool existed = Contains(key);
    KEEPSTATE_RETURN_IF_ERROR(WriteMarked(key, std::nullopt));
    return existed;
  }
  Status s = tree_.Delete(key);
  if (s.IsNotFound()) return false;
  KEEPSTATE_RETURN_IF_ERROR(s);
  changes_.Record(key);
  tree_.Shrink();
  return true;
}

Status Store::WriteMarked(std::string_view key, std::optional<std::string_view> value) {
  KEEPSTATE_ASSIGN_OR_RETURN(Txn txn, BeginWrite());
  if (value) {
    KEEPSTATE_RETURN_IF_ERROR(txn.Put(key, *value));
  } else {
    KEEPSTATE_RETURN_IF_ERROR(txn.Delete(key).status());
  }
  return txn.Commit();
}

void Store::Scan(const ScanOptions& options,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const {
  if (closed_) return;
  tree_.Scan(options, fn);
}

Result<Txn> Store::BeginWrite() {
  KEEPSTATE_RETURN_IF_ERROR(CheckWritable());
  write_open_ = true;
  return Txn(this);
}

}  // namespace keepstate::engine
