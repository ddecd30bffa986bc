// Store: a B+tree in an arena, with single-writer transactions.
//
// The store is the engine's public face: point reads and writes, scans, and
// atomic multi-key write transactions (Txn) with read-your-writes.
//
// Concurrency model: keepstate runs business logic as cooperative fibers on
// one thread. A write transaction must run to completion without suspending
// (no co_await between BeginWrite() and Commit()/Abort()); that is what makes
// transactions serializable without locks. It is checked: while a Txn is
// open, every other write — Put, Delete, or a second BeginWrite — returns
// Busy instead of interleaving, so a fiber that suspends with a Txn open is
// caught the moment another fiber tries to write.
//
// After Close(), every call returns Closed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/engine/btree.h"
#include "keepstate/engine/changes.h"
#include "keepstate/status.h"

namespace keepstate::engine {

class Store;

// An atomic write transaction. Writes are buffered and applied to the tree
// only by Commit(), so Abort() (or destroying an uncommitted Txn) leaves the
// tree's bytes and dirty bits exactly as they were.
class Txn {
 public:
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  ~Txn();  // aborts if still open

  // Read-your-writes: buffered writes shadow the tree.
  Status Get(std::string_view key, std::string* value) const;
  bool Contains(std::string_view key) const;
  // Reads n keys at once (see BTree::GetMany): statuses[i] is ok, NotFound,
  // or InvalidArgument for a bad key. Same results as n calls to Get().
  // hints (optional, from Store::Locate): a key whose hint still holds is
  // read through it without descending the tree; a stale one is ignored.
  void GetMany(const std::string_view* keys, std::size_t n, std::string* values,
               Status* statuses, const LeafHint* hints = nullptr) const;
  // InvalidArgument for keys or values over the limits; Closed after
  // Commit/Abort.
  Status Put(std::string_view key, std::string_view value);
  // Result: whether the key existed (as seen by this transaction).
  Result<bool> Delete(std::string_view key);
  // Entries in range as this transaction sees them, in order.
  void Scan(const ScanOptions& options,
            const std::function<bool(std::string_view, std::string_view)>& fn) const;

  // Applies every buffered write atomically. OutOfSpace if memory cannot
  // grow (then nothing is applied). The Txn is finished afterwards.
  Status Commit();
  void Abort();

  // The application's schema version (the superblock's user_version) as this
  // transaction sees it, and a new one, applied by Commit with the writes.
  std::uint64_t schema_version() const;
  Status SetSchemaVersion(std::uint64_t version);

  bool open() const { return store_ != nullptr; }
  // Buffered writes (a schema version change counts as one).
  std::size_t pending_writes() const;

 private:
  friend class Store;
  explicit Txn(Store* store) : store_(store) {}
  void Finish();
  // Buffers the write mark of `key` if the store keeps them (SetWriteMarks).
  // Errors: InvalidArgument (the key leaves no room for its mark).
  Status Mark(std::string_view key);

  Store* store_;
};

struct StoreOptions {
  std::uint32_t page_size = kDefaultPageSize;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Create(const StoreOptions& options = {});
  // A store over a restored arena. With verify, walks the whole tree first
  // (BTree::Check) and returns Corruption if any invariant is broken.
  static Result<std::unique_ptr<Store>> FromArena(Arena arena, bool verify);

  Status Get(std::string_view key, std::string* value) const;
  bool Contains(std::string_view key) const;
  // Reads up to BTree::kMaxBatch keys at once, overlapping their cache misses.
  void GetMany(const std::string_view* keys, std::size_t n, std::string* values,
               Status* statuses) const;
  // Where n keys are, for a batch of transactions about to read them (see
  // BTree::Locate): pass hints to Txn::GetMany. hints[i] is invalid for an
  // absent or invalid key, and for every key of a closed store.
  void Locate(const std::string_view* keys, std::size_t n, LeafHint* hints) const;
  Status Put(std::string_view key, std::string_view value);
  Result<bool> Delete(std::string_view key);
  void Scan(const ScanOptions& options,
            const std::function<bool(std::string_view, std::string_view)>& fn) const;
  std::uint64_t Count() const { return arena_.entry_count(); }
  // The application's schema version (superblock user_version; 0: never set).
  std::uint64_t schema_version() const { return arena_.user_version(); }
  std::uint64_t CountRange(const ScanOptions& options) const { return tree_.CountRange(options); }

  // Busy if a write transaction is already open; Closed after Close().
  Result<Txn> BeginWrite();
  bool write_open() const { return write_open_; }

  void Close() { closed_ = true; }
  bool closed() const { return closed_; }

  Arena& arena() { return arena_; }
  const Arena& arena() const { return arena_; }
  const BTree& tree() const { return tree_; }

  // The keys of writes that landed since the last Clear (changes.h), while
  // enabled (off by default: then recording costs one branch per write).
  ChangeLog& changes() { return changes_; }

  // Write marks (a synced store, docs/sync.md): while `prefix` is set, every
  // write of a key that does not start with prefix[0] also puts prefix + key
  // (empty value) in the same transaction, so the keys local work changed
  // are known, committed with the writes. Keys are then limited to
  // kMaxKeySize - prefix.size() bytes. Empty: off (the default).
  void SetWriteMarks(std::string prefix) { mark_prefix_ = std::move(prefix); }
  const std::string& write_marks() const { return mark_prefix_; }

 private:
  friend class Txn;
  explicit Store(Arena arena) : arena_(std::move(arena)), tree_(&arena_) {}
  Status CheckWritable() const;
  // Put (value) or Delete (nullopt) with its write mark, as one transaction.
  Status WriteMarked(std::string_view key, std::optional<std::string_view> value);

  // The open transaction's buffer, owned by the store so that it is reused
  // (no allocation per transaction once warm). Keys and values live back to
  // back in `bytes`; every key the transaction touched has one Entry (its
  // newest write and where a read found it), found through a small
  // open-addressing table once there are more than kLinearEntries.
  struct Entry {
    std::uint32_t key_offset, key_size;
    std::uint32_t hash;
    std::int32_t op = -1;  // newest write (index into ops), -1: only read
    LeafHint where;        // from a read of this key, if any
  };
  struct Op {
    std::uint32_t entry;
    std::uint32_t value_offset, value_size;
    bool is_delete;
  };
  static constexpr std::size_t kLinearEntries = 16;
  struct WriteBuffer {
    std::vector<Entry> entries;
    std::vector<Op> ops;
    std::vector<std::int32_t> table;  // entry index or -1; size a power of two
    // Keys and values back to back: the first `used` bytes of `bytes`, which
    // grows by doubling and keeps its size (reused by the next transaction).
    std::vector<char> bytes;
    std::size_t used = 0;
    std::optional<std::uint64_t> schema_version;  // set by Txn::SetSchemaVersion
    std::string_view key(const Entry& e) const { return {bytes.data() + e.key_offset, e.key_size}; }
    std::string_view value(const Op& op) const {
      return {bytes.data() + op.value_offset, op.value_size};
    }
    // Appends s to `bytes` and returns its offset.
    std::uint32_t Append(std::string_view s) {
      if (bytes.size() - used < s.size()) bytes.resize(std::max(2 * bytes.size(), used + s.size()));
      CopyBytes(bytes.data() + used, s.data(), s.size());
      const std::uint32_t offset = static_cast<std::uint32_t>(used);
      used += s.size();
      return offset;
    }
    // Index of the key's entry, or -1.
    std::int32_t Find(std::string_view key) const;
    // The key's entry, added if absent.
    std::uint32_t FindOrAdd(std::string_view key);
    // A new entry for the key. REQUIRES: Find(key) < 0.
    std::uint32_t Add(std::string_view key);
    void Clear() {
      entries.clear();
      ops.clear();
      used = 0;
      schema_version.reset();
      table.clear();  // rebuilt (capacity reused) when a transaction outgrows kLinearEntries
    }
  };

  Arena arena_;
  BTree tree_;
  WriteBuffer buffer_;
  ChangeLog changes_;
  std::string mark_prefix_;
  std::string mark_key_;  // reused by each mark's key (no allocation per write once warm)
  bool write_open_ = false;
  bool closed_ = false;
};

}  // namespace keepstate::engine
