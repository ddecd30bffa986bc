// Store and Txn. See store.h for the concurrency model.
//
// Invariant: buffer_ is empty whenever write_open_ is false.
#include <algorithm>
#include <cassert>

#include "keepstate/engine/store.h"

namespace keepstate::engine {
namespace {

// Writes applied per arena reservation. A reservation covers the worst case
// of its writes (a split per level each), so keeping chunks small keeps the
// reserved-but-unused memory small.
constexpr std::size_t kApplyChunk = 128;
// Above this many buffered writes, lookups use a hash index instead of a
// backwards linear search.
constexpr std::size_t kIndexThreshold = 16;

}  // namespace

// ---- Store ----------------------------------------------------------------

Result<std::unique_ptr<Store>> Store::Create(const StoreOptions& options) {
  KEEPSTATE_ASSIGN_OR_RETURN(Arena arena, Arena::Create(options.page_size));
  return std::unique_ptr<Store>(new Store(std::move(arena)));
}

Result<std::unique_ptr<Store>> Store::FromArena(Arena arena, bool verify) {
  std::unique_ptr<Store> store(new Store(std::move(arena)));
  if (verify) KEEPSTATE_RETURN_IF_ERROR(store->tree_.Check());
  return store;
}

void Store::ReplaceArena(Arena arena) {
  assert(!write_open_);
  arena_ = std::move(arena);
  tree_.InvalidateHints();
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

Status Store::Put(std::string_view key, std::string_view value) {
  KEEPSTATE_RETURN_IF_ERROR(CheckWritable());
  return tree_.Put(key, value);
}

Result<bool> Store::Delete(std::string_view key) {
  KEEPSTATE_RETURN_IF_ERROR(CheckWritable());
  Status s = tree_.Delete(key);
  if (s.IsNotFound()) return false;
  KEEPSTATE_RETURN_IF_ERROR(s);
  return true;
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

// ---- Txn ------------------------------------------------------------------

Txn::Txn(Txn&& other) noexcept : store_(other.store_) { other.store_ = nullptr; }

Txn::~Txn() {
  if (store_ != nullptr) Abort();
}

std::size_t Txn::pending_writes() const { return store_ ? store_->buffer_.ops.size() : 0; }

void Txn::Finish() {
  store_->buffer_.Clear();
  store_->write_open_ = false;
  store_ = nullptr;
}

void Txn::Abort() {
  if (store_ != nullptr) Finish();
}

std::int64_t Txn::Find(std::string_view key) const {
  const Store::WriteBuffer& b = store_->buffer_;
  if (!b.index.empty()) {
    auto it = b.index.find(std::string(key));
    return it == b.index.end() ? -1 : static_cast<std::int64_t>(it->second);
  }
  for (std::size_t i = b.ops.size(); i-- > 0;) {
    if (b.key(b.ops[i]) == key) return static_cast<std::int64_t>(i);
  }
  return -1;
}

Status Txn::Get(std::string_view key, std::string* value) const {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  const std::int64_t i = Find(key);
  Store::WriteBuffer& b = store_->buffer_;
  if (i < 0) {
    if (b.hints.size() == Store::kMaxHints) return store_->tree_.Get(key, value);
    LeafHint where;
    KEEPSTATE_RETURN_IF_ERROR(store_->tree_.Get(key, value, &where));
    b.hints.push_back({static_cast<std::uint32_t>(b.bytes.size()),
                       static_cast<std::uint32_t>(key.size()), where});
    b.bytes.append(key);
    return Status::Ok();
  }
  const Store::Op& op = b.ops[static_cast<std::size_t>(i)];
  if (op.is_delete) return Status::NotFound("key not found");
  value->assign(b.value(op));
  return Status::Ok();
}

void Txn::GetMany(const std::string_view* keys, std::size_t n, std::string* values,
                  Status* statuses) const {
  if (store_ == nullptr) {
    for (std::size_t i = 0; i < n; ++i) statuses[i] = Status::Closed("transaction is finished");
    return;
  }
  Store::WriteBuffer& b = store_->buffer_;
  if (b.ops.empty() && n <= BTree::kMaxBatch && b.hints.size() + n <= Store::kMaxHints) {
    // Nothing buffered yet (the usual start of a transaction): straight to
    // the tree, keeping a read hint per key.
    bool valid = true;
    for (std::size_t i = 0; i < n; ++i) valid = valid && ValidateKey(keys[i]).ok();
    if (valid) {
      LeafHint where[BTree::kMaxBatch];
      store_->tree_.GetMany(keys, n, values, statuses, where);
      for (std::size_t i = 0; i < n; ++i) {
        if (!statuses[i].ok()) continue;
        b.hints.push_back({static_cast<std::uint32_t>(b.bytes.size()),
                           static_cast<std::uint32_t>(keys[i].size()), where[i]});
        b.bytes.append(keys[i]);
      }
      return;
    }
  }
  // Keys the buffer answers are served from it; the rest go to the tree in
  // batches, recording read hints while there is room.
  std::string_view tree_keys[BTree::kMaxBatch];
  std::size_t tree_index[BTree::kMaxBatch];
  LeafHint where[BTree::kMaxBatch];
  Status tree_status[BTree::kMaxBatch];
  std::size_t m = 0;
  auto flush = [&] {
    if (m == 0) return;
    std::string tree_values[BTree::kMaxBatch];
    store_->tree_.GetMany(tree_keys, m, tree_values, tree_status, where);
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t i = tree_index[j];
      statuses[i] = std::move(tree_status[j]);
      if (!statuses[i].ok()) continue;
      values[i] = std::move(tree_values[j]);
      if (b.hints.size() < Store::kMaxHints) {
        b.hints.push_back({static_cast<std::uint32_t>(b.bytes.size()),
                           static_cast<std::uint32_t>(keys[i].size()), where[j]});
        b.bytes.append(keys[i]);
      }
    }
    m = 0;
  };
  for (std::size_t i = 0; i < n; ++i) {
    statuses[i] = ValidateKey(keys[i]);
    if (!statuses[i].ok()) continue;
    const std::int64_t op = Find(keys[i]);
    if (op >= 0) {
      const Store::Op& o = b.ops[static_cast<std::size_t>(op)];
      if (o.is_delete) {
        statuses[i] = Status::NotFound("key not found");
      } else {
        values[i].assign(b.value(o));
      }
      continue;
    }
    tree_keys[m] = keys[i];
    tree_index[m++] = i;
    if (m == BTree::kMaxBatch) flush();
  }
  flush();
}

bool Txn::Contains(std::string_view key) const {
  if (store_ == nullptr) return false;
  const std::int64_t i = Find(key);
  if (i < 0) return store_->tree_.Contains(key);
  return !store_->buffer_.ops[static_cast<std::size_t>(i)].is_delete;
}

Status Txn::Put(std::string_view key, std::string_view value) {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  KEEPSTATE_RETURN_IF_ERROR(ValidateValue(value));
  Store::WriteBuffer& b = store_->buffer_;
  const std::uint32_t index = static_cast<std::uint32_t>(b.ops.size());
  Store::Op op{static_cast<std::uint32_t>(b.bytes.size()), static_cast<std::uint32_t>(key.size()),
               static_cast<std::uint32_t>(b.bytes.size() + key.size()),
               static_cast<std::uint32_t>(value.size()), false};
  b.bytes.append(key);
  b.bytes.append(value);
  for (std::size_t h = 0; h < b.hints.size(); ++h) {
    const Store::ReadHint& r = b.hints[h];
    if (r.key_size == key.size() && std::string_view(b.bytes.data() + r.key_offset, r.key_size) == key) {
      op.hint = static_cast<std::int32_t>(h);
      break;
    }
  }
  b.ops.push_back(op);
  if (!b.index.empty()) {
    b.index[std::string(key)] = index;
  } else if (b.ops.size() > kIndexThreshold) {
    for (std::uint32_t i = 0; i < b.ops.size(); ++i) b.index[std::string(b.key(b.ops[i]))] = i;
  }
  return Status::Ok();
}

Result<bool> Txn::Delete(std::string_view key) {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  const bool existed = Contains(key);
  Store::WriteBuffer& b = store_->buffer_;
  const std::uint32_t index = static_cast<std::uint32_t>(b.ops.size());
  b.ops.push_back({static_cast<std::uint32_t>(b.bytes.size()), static_cast<std::uint32_t>(key.size()),
                   0, 0, true});
  b.bytes.append(key);
  if (!b.index.empty()) {
    b.index[std::string(key)] = index;
  } else if (b.ops.size() > kIndexThreshold) {
    for (std::uint32_t i = 0; i < b.ops.size(); ++i) b.index[std::string(b.key(b.ops[i]))] = i;
  }
  return existed;
}

void Txn::Scan(const ScanOptions& o,
               const std::function<bool(std::string_view, std::string_view)>& fn) const {
  if (store_ == nullptr) return;
  const Store::WriteBuffer& b = store_->buffer_;
  // The newest buffered op per key in range, in key order.
  std::vector<std::uint32_t> mine;
  for (std::uint32_t i = 0; i < b.ops.size(); ++i) {
    const std::string_view k = b.key(b.ops[i]);
    if (CompareKeys(k, o.start) < 0) continue;
    if (o.has_end && CompareKeys(k, o.end) >= 0) continue;
    mine.push_back(i);
  }
  std::stable_sort(mine.begin(), mine.end(), [&](std::uint32_t x, std::uint32_t y) {
    const int c = CompareKeys(b.key(b.ops[x]), b.key(b.ops[y]));
    return c < 0 || (c == 0 && x > y);  // newest first among equals
  });
  mine.erase(std::unique(mine.begin(), mine.end(),
                         [&](std::uint32_t x, std::uint32_t y) {
                           return b.key(b.ops[x]) == b.key(b.ops[y]);
                         }),
             mine.end());
  if (o.reverse) std::reverse(mine.begin(), mine.end());

  // Merge the buffered ops with the tree; on equal keys the buffer wins.
  Cursor c(store_->tree_);
  if (!o.reverse) {
    c.SeekGE(o.start);
  } else if (o.has_end) {
    c.SeekLT(o.end);
  } else {
    c.SeekLast();
  }
  auto tree_in_range = [&] {
    if (!c.Valid()) return false;
    if (!o.reverse) return !o.has_end || CompareKeys(c.key(), o.end) < 0;
    return CompareKeys(c.key(), o.start) >= 0;
  };
  auto advance = [&] { o.reverse ? c.Prev() : c.Next(); };
  const int dir = o.reverse ? -1 : 1;
  std::uint64_t emitted = 0;
  std::size_t bi = 0;
  while (o.limit == 0 || emitted < o.limit) {
    const bool tv = tree_in_range();
    const bool bv = bi < mine.size();
    if (!tv && !bv) break;
    int cmp = 0;  // < 0: tree entry comes first
    if (tv && bv) cmp = dir * CompareKeys(c.key(), b.key(b.ops[mine[bi]]));
    if (bv && (!tv || cmp >= 0)) {
      if (tv && cmp == 0) advance();
      const Store::Op& op = b.ops[mine[bi++]];
      if (op.is_delete) continue;
      ++emitted;
      if (!fn(b.key(op), b.value(op))) return;
    } else {
      ++emitted;
      const std::string_view k = c.key();
      if (!fn(k, c.value())) return;
      advance();
    }
  }
}

Status Txn::Commit() {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  Store::WriteBuffer& b = store_->buffer_;
  Arena& arena = store_->arena_;
  BTree& tree = store_->tree_;
  const std::size_t n = b.ops.size();
  // With an index, only the newest op per key is applied.
  auto live = [&](std::size_t i) {
    if (b.index.empty()) return true;
    return b.index.find(std::string(b.key(b.ops[i])))->second == i;
  };
  // Each chunk reserves its worst case first, so within a chunk nothing can
  // fail; across chunks the journal makes a late failure undoable.
  const bool journal = n > kApplyChunk;
  if (journal) arena.BeginJournal();
  for (std::size_t begin = 0; begin < n; begin += kApplyChunk) {
    const std::size_t end = std::min(n, begin + kApplyChunk);
    std::uint64_t need = 0;
    for (std::size_t i = begin; i < end; ++i) {
      const Store::Op& op = b.ops[i];
      if (!op.is_delete) need += tree.PagesNeededForPut(op.key_size, op.value_size);
    }
    Status s = need > 0xFFFFFFFFu ? Status::OutOfSpace("transaction too large")
                                  : arena.Reserve(static_cast<std::uint32_t>(need));
    if (!s.ok()) {
      if (journal) arena.RollbackJournal();
      Finish();
      return s;
    }
    for (std::size_t i = begin; i < end; ++i) {
      if (!live(i)) continue;
      const Store::Op& op = b.ops[i];
      const LeafHint* hint = op.hint >= 0 ? &b.hints[static_cast<std::size_t>(op.hint)].where : nullptr;
      Status applied =
          op.is_delete ? tree.Delete(b.key(op)) : tree.Put(b.key(op), b.value(op), hint);
      // Validated at Put time and reserved above: only "not found" for a
      // delete of an absent key can come back here.
      assert(applied.ok() || applied.IsNotFound());
      applied.IgnoreError();
    }
  }
  if (journal) arena.CommitJournal();
  Finish();
  return Status::Ok();
}

}  // namespace keepstate::engine
