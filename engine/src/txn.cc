// Txn and the write buffer it fills (Store::WriteBuffer, owned by the store
// so that it is reused). The Store methods are in store.cc; see store.h for
// the concurrency model.
//
// Invariant: buffer_ is empty whenever write_open_ is false.
#include <algorithm>
#include <cassert>

#include "keepstate/engine/store.h"

namespace keepstate::engine {
namespace {

// A fast 32-bit hash of a key (64-bit multiply-xorshift over 8-byte words).
std::uint32_t HashKey(std::string_view key) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ key.size();
  std::size_t i = 0;
  for (; i + 8 <= key.size(); i += 8) {
    std::uint64_t w;
    __builtin_memcpy(&w, key.data() + i, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  std::uint64_t tail = 0;
  for (std::size_t j = 0; i + j < key.size(); ++j) {
    tail |= std::uint64_t{static_cast<unsigned char>(key[i + j])} << (8 * j);
  }
  h = (h ^ tail) * 0x94D049BB133111EBull;
  h ^= h >> 29;
  return static_cast<std::uint32_t>(h);
}

bool SameKey(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CompareBytes(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// ---- Write buffer ---------------------------------------------------------


std::int32_t Store::WriteBuffer::Find(std::string_view key) const {
  if (table.empty()) {
    for (std::size_t i = entries.size(); i-- > 0;) {
      if (SameKey(this->key(entries[i]), key)) return static_cast<std::int32_t>(i);
    }
    return -1;
  }
  const std::uint32_t h = HashKey(key);
  const std::size_t mask = table.size() - 1;
  for (std::size_t slot = h & mask;; slot = (slot + 1) & mask) {
    const std::int32_t i = table[slot];
    if (i < 0) return -1;
    const Entry& e = entries[static_cast<std::size_t>(i)];
    if (e.hash == h && SameKey(this->key(e), key)) return i;
  }
}

std::uint32_t Store::WriteBuffer::FindOrAdd(std::string_view key) {
  const std::int32_t found = Find(key);
  return found >= 0 ? static_cast<std::uint32_t>(found) : Add(key);
}

std::uint32_t Store::WriteBuffer::Add(std::string_view key) {
  const std::uint32_t index = static_cast<std::uint32_t>(entries.size());
  // Small transactions search their entries linearly and never hash.
  entries.push_back({Append(key), static_cast<std::uint32_t>(key.size()),
                     table.empty() ? 0 : HashKey(key), -1, LeafHint{}});
  if (entries.size() <= kLinearEntries) return index;
  // Keep the table at most half full: grow (rehashing everything) or insert.
  if (table.size() < 2 * entries.size()) {
    std::size_t size = 64;
    while (size < 4 * entries.size()) size *= 2;
    table.assign(size, -1);
    for (std::uint32_t i = 0; i < entries.size(); ++i) {
      entries[i].hash = HashKey(this->key(entries[i]));
      std::size_t slot = entries[i].hash & (size - 1);
      while (table[slot] >= 0) slot = (slot + 1) & (size - 1);
      table[slot] = static_cast<std::int32_t>(i);
    }
  } else {
    const std::size_t mask = table.size() - 1;
    std::size_t slot = entries[index].hash & mask;
    while (table[slot] >= 0) slot = (slot + 1) & mask;
    table[slot] = static_cast<std::int32_t>(index);
  }
  return index;
}

// ---- Txn ------------------------------------------------------------------

Txn::Txn(Txn&& other) noexcept : store_(other.store_) { other.store_ = nullptr; }

Txn::~Txn() {
  if (store_ != nullptr) Abort();
}

std::size_t Txn::pending_writes() const {
  if (store_ == nullptr) return 0;
  return store_->buffer_.ops.size() + (store_->buffer_.schema_version ? 1 : 0);
}

std::uint64_t Txn::schema_version() const {
  if (store_ == nullptr) return 0;
  return store_->buffer_.schema_version.value_or(store_->arena_.user_version());
}

Status Txn::SetSchemaVersion(std::uint64_t version) {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  store_->buffer_.schema_version = version;
  return Status::Ok();
}

void Txn::Finish() {
  store_->buffer_.Clear();
  store_->write_open_ = false;
  store_ = nullptr;
}

void Txn::Abort() {
  if (store_ != nullptr) Finish();
}

Status Txn::Get(std::string_view key, std::string* value) const {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  Store::WriteBuffer& b = store_->buffer_;
  const std::int32_t e = b.Find(key);
  if (e >= 0 && b.entries[static_cast<std::size_t>(e)].op >= 0) {
    const Store::Op& op = b.ops[static_cast<std::size_t>(b.entries[static_cast<std::size_t>(e)].op)];
    if (op.is_delete) return Status::NotFound("key not found");
    value->assign(b.value(op));
    return Status::Ok();
  }
  LeafHint where;
  KEEPSTATE_RETURN_IF_ERROR(store_->tree_.Get(key, value, &where));
  const std::uint32_t entry = e >= 0 ? static_cast<std::uint32_t>(e) : b.Add(key);
  b.entries[entry].where = where;
  return Status::Ok();
}

void Txn::GetMany(const std::string_view* keys, std::size_t n, std::string* values,
                  Status* statuses, const LeafHint* hints) const {
  if (store_ == nullptr) {
    for (std::size_t i = 0; i < n; ++i) statuses[i] = Status::Closed("transaction is finished");
    return;
  }
  Store::WriteBuffer& b = store_->buffer_;
  // Keys the buffer answers are served from it; the rest go to the tree in
  // batches whose cache misses overlap, recording where each was found.
  std::string_view tree_keys[BTree::kMaxBatch];
  std::size_t tree_index[BTree::kMaxBatch];
  std::int32_t found[BTree::kMaxBatch];  // the key's entry (a read, no write), or -1
  LeafHint where[BTree::kMaxBatch];
  std::size_t m = 0;
  auto flush = [&] {
    if (m == 0) return;
    if (m == n) {
      // The common case: nothing buffered for these keys; write in place.
      store_->tree_.GetMany(tree_keys, m, values, statuses, where);
    } else {
      std::string tree_values[BTree::kMaxBatch];
      Status tree_status[BTree::kMaxBatch];
      store_->tree_.GetMany(tree_keys, m, tree_values, tree_status, where);
      for (std::size_t j = 0; j < m; ++j) {
        statuses[tree_index[j]] = std::move(tree_status[j]);
        values[tree_index[j]] = std::move(tree_values[j]);
      }
    }
    for (std::size_t j = 0; j < m; ++j) {
      if (!statuses[tree_index[j]].ok()) continue;
      // Every key sent to the tree had no write buffered; it has an entry
      // only if it was read before, or earlier in this batch.
      std::int32_t e = found[j];
      for (std::size_t k = 0; e < 0 && k < j; ++k) {
        if (SameKey(tree_keys[k], tree_keys[j])) e = b.Find(tree_keys[j]);
      }
      b.entries[e >= 0 ? static_cast<std::uint32_t>(e) : b.Add(tree_keys[j])].where = where[j];
    }
    m = 0;
  };
  for (std::size_t i = 0; i < n; ++i) {
    statuses[i] = ValidateKey(keys[i]);
    if (!statuses[i].ok()) continue;
    const std::int32_t e = b.Find(keys[i]);
    if (e >= 0 && b.entries[static_cast<std::size_t>(e)].op >= 0) {
      const Store::Op& o = b.ops[static_cast<std::size_t>(b.entries[static_cast<std::size_t>(e)].op)];
      if (o.is_delete) {
        statuses[i] = Status::NotFound("key not found");
      } else {
        values[i].assign(b.value(o));
      }
      continue;
    }
    LeafHint where_hinted;
    if (hints != nullptr && hints[i].valid() &&
        store_->tree_.GetAt(hints[i], keys[i], &values[i], &where_hinted)) {
      b.entries[e >= 0 ? static_cast<std::uint32_t>(e) : b.Add(keys[i])].where = where_hinted;
      continue;  // statuses[i] is ok from ValidateKey
    }
    tree_keys[m] = keys[i];
    found[m] = e;
    tree_index[m++] = i;
    if (m == BTree::kMaxBatch) flush();
  }
  // The in-place path above needs tree_index[j] == j, true when m == n.
  flush();
}

bool Txn::Contains(std::string_view key) const {
  if (store_ == nullptr || !ValidateKey(key).ok()) return false;
  const Store::WriteBuffer& b = store_->buffer_;
  const std::int32_t e = b.Find(key);
  if (e >= 0 && b.entries[static_cast<std::size_t>(e)].op >= 0) {
    return !b.ops[static_cast<std::size_t>(b.entries[static_cast<std::size_t>(e)].op)].is_delete;
  }
  return store_->tree_.Contains(key);
}

Status Txn::Mark(std::string_view key) {
  const std::string& prefix = store_->mark_prefix_;
  if (prefix.empty() || key[0] == prefix[0]) return Status::Ok();
  if (key.size() > kMaxKeySize - prefix.size()) {
    return Status::InvalidArgument("a key of a synced store is at most " + std::to_string(kMaxKeySize - prefix.size()) +
                                   " bytes (its write mark takes " + std::to_string(prefix.size()) + "), got " +
                                   std::to_string(key.size()));
  }
  std::string& mark = store_->mark_key_;
  mark.assign(prefix).append(key);
  Store::WriteBuffer& b = store_->buffer_;
  const std::uint32_t entry = b.FindOrAdd(mark);
  b.entries[entry].op = static_cast<std::int32_t>(b.ops.size());
  b.ops.push_back({entry, b.Append({}), 0, false});
  return Status::Ok();
}

Status Txn::Put(std::string_view key, std::string_view value) {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  KEEPSTATE_RETURN_IF_ERROR(ValidateValue(value));
  KEEPSTATE_RETURN_IF_ERROR(Mark(key));
  Store::WriteBuffer& b = store_->buffer_;
  const std::uint32_t entry = b.FindOrAdd(key);
  b.entries[entry].op = static_cast<std::int32_t>(b.ops.size());
  b.ops.push_back({entry, b.Append(value), static_cast<std::uint32_t>(value.size()), false});
  return Status::Ok();
}

Result<bool> Txn::Delete(std::string_view key) {
  if (store_ == nullptr) return Status::Closed("transaction is finished");
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  KEEPSTATE_RETURN_IF_ERROR(Mark(key));
  const bool existed = Contains(key);
  Store::WriteBuffer& b = store_->buffer_;
  const std::uint32_t entry = b.FindOrAdd(key);
  b.entries[entry].op = static_cast<std::int32_t>(b.ops.size());
  b.ops.push_back({entry, 0, 0, true});
  return existed;
}

void Txn::Scan(const ScanOptions& o,
               const std::function<bool(std::string_view, std::string_view)>& fn) const {
  if (store_ == nullptr) return;
  const Store::WriteBuffer& b = store_->buffer_;
  // The keys this transaction wrote, in range, in key order (one entry per
  // key, holding its newest write).
  std::vector<std::uint32_t> mine;
  for (std::uint32_t i = 0; i < b.entries.size(); ++i) {
    const Store::Entry& e = b.entries[i];
    if (e.op < 0) continue;
    const std::string_view k = b.key(e);
    if (CompareKeys(k, o.start) < 0) continue;
    if (o.has_end && CompareKeys(k, o.end) >= 0) continue;
    mine.push_back(i);
  }
  std::sort(mine.begin(), mine.end(), [&](std::uint32_t x, std::uint32_t y) {
    return CompareKeys(b.key(b.entries[x]), b.key(b.entries[y])) < 0;
  });
  if (o.reverse) std::reverse(mine.begin(), mine.end());

  // Merge with the tree; on equal keys the buffer wins.
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
    int cmp = 0;  // < 0: the tree's entry comes first
    if (tv && bv) cmp = dir * CompareKeys(c.key(), b.key(b.entries[mine[bi]]));
    if (bv && (!tv || cmp >= 0)) {
      if (tv && cmp == 0) advance();
      const Store::Entry& e = b.entries[mine[bi++]];
      const Store::Op& op = b.ops[static_cast<std::size_t>(e.op)];
      if (op.is_delete) continue;
      ++emitted;
      if (!fn(b.key(e), b.value(op))) return;
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
  // Only each key's newest write is applied. A put that replaces a value
  // this transaction read, with one of the same size, allocates nothing
  // (in place via its hint, or a same-size replace if the hint went stale);
  // every other put reserves its worst case.
  auto pages_for = [&](const Store::Entry& e) -> std::uint64_t {
    const Store::Op& op = b.ops[static_cast<std::size_t>(e.op)];
    if (op.is_delete) return 0;
    if (e.where.valid() && e.where.inline_value && e.where.value_size == op.value_size) return 0;
    return tree.PagesNeededForPut(e.key_size, op.value_size);
  };
  auto apply = [&](const Store::Entry& e) {
    const Store::Op& op = b.ops[static_cast<std::size_t>(e.op)];
    Status s = op.is_delete ? tree.Delete(b.key(e))
                            : tree.Put(b.key(e), b.value(op), e.where.valid() ? &e.where : nullptr);
    // Validated at write time and reserved before: only "not found" for a
    // delete of an absent key can come back here.
    assert(s.ok() || s.IsNotFound());
    if (s.ok()) store_->changes_.Record(b.key(e));
    s.IgnoreError();
  };
  std::uint64_t need = 0;
  for (const Store::Entry& e : b.entries) {
    if (e.op >= 0) need += pages_for(e);
  }
  // One reservation when it is modest; otherwise chunks under the journal,
  // so that a failure late in a huge transaction is still undone exactly.
  const std::uint64_t kMaxSingleReserve = std::max<std::uint64_t>(4096, arena.page_count() / 4);
  if (need <= kMaxSingleReserve) {
    if (need > 0) {
      Status s = arena.Reserve(static_cast<std::uint32_t>(need));
      if (!s.ok()) {
        Finish();
        return s;
      }
    }
    for (const Store::Entry& e : b.entries) {
      if (e.op >= 0) apply(e);
    }
    if (b.schema_version) arena.SetUserVersion(*b.schema_version);  // page 0: always there
    tree.Shrink();
    Finish();
    return Status::Ok();
  }
  arena.BeginJournal();
  const std::size_t changes_mark = store_->changes_.mark();
  std::size_t i = 0;
  while (i < b.entries.size()) {
    std::uint64_t chunk_need = 0;
    std::size_t end = i;
    for (; end < b.entries.size() && chunk_need < kMaxSingleReserve; ++end) {
      if (b.entries[end].op >= 0) chunk_need += pages_for(b.entries[end]);
    }
    Status s = chunk_need > 0xFFFFFFFFu ? Status::OutOfSpace("transaction too large")
                                        : arena.Reserve(static_cast<std::uint32_t>(chunk_need));
    if (!s.ok()) {
      arena.RollbackJournal();
      store_->changes_.Truncate(changes_mark);
      Finish();
      return s;
    }
    for (; i < end; ++i) {
      if (b.entries[i].op >= 0) apply(b.entries[i]);
    }
  }
  if (b.schema_version) arena.SetUserVersion(*b.schema_version);
  arena.CommitJournal();
  tree.Shrink();  // outside the journal: the writes are final
  Finish();
  return Status::Ok();
}

}  // namespace keepstate::engine
