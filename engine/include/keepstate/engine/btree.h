// BTree: an ordered map from byte-string keys to byte-string values, stored
// in the pages of an Arena.
//
// Keys are 1..kMaxKeySize bytes and compare as unsigned bytes (memcmp, then
// length). Values are 0..kMaxValueSize bytes; a value that does not fit inline
// in a leaf cell lives in a chain of overflow pages. The layout of every page
// type is specified in docs/engine.md and pinned by static_asserts in
// btree_node.h.
//
// Invariants (checked by Check()):
//  - every leaf is at depth tree_height - 1; keys are strictly increasing
//    within a node and lie inside the bounds implied by the parent's
//    separators;
//  - every page other than the superblock is reachable exactly once: from the
//    tree, from an overflow chain, or from the free list;
//  - the superblock's entry_count equals the number of leaf cells.
//
// Pages freed by deletes, merges and replaced overflow chains return to the
// arena's free list, so a tree emptied by deletes holds no pages at all.
//
// Thread safety: none. A cursor is invalidated by any write to the tree.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/status.h"

namespace keepstate::engine {

inline constexpr std::size_t kMaxKeySize = 1024;
inline constexpr std::size_t kMaxValueSize = 16u << 20;

// memcmp for the short keys a tree compares all the time: 8 bytes at a time,
// inlined (a libc memcmp call costs more than the comparison itself).
inline int CompareBytes(const char* a, const char* b, std::size_t n) {
  while (n >= 8) {
    std::uint64_t x, y;
    __builtin_memcpy(&x, a, 8);
    __builtin_memcpy(&y, b, 8);
    if (x != y) return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
    a += 8;
    b += 8;
    n -= 8;
  }
  for (; n > 0; --n, ++a, ++b) {
    if (*a != *b) return static_cast<unsigned char>(*a) < static_cast<unsigned char>(*b) ? -1 : 1;
  }
  return 0;
}

// memcpy for the short keys and values transactions move all the time:
// inlined up to 16 bytes (in wasm a libc memcpy call costs more than such a
// copy), memcpy beyond.
inline void CopyBytes(void* dst, const void* src, std::size_t n) {
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  if (n >= 8 && n <= 16) {
    // Two 8-byte moves that overlap when n < 16.
    std::uint64_t head, tail;
    __builtin_memcpy(&head, s, 8);
    __builtin_memcpy(&tail, s + n - 8, 8);
    __builtin_memcpy(d, &head, 8);
    __builtin_memcpy(d + n - 8, &tail, 8);
  } else if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
  } else {
    __builtin_memcpy(d, s, n);
  }
}

// Key order: unsigned bytes (memcmp), a proper prefix first.
inline int CompareKeys(std::string_view a, std::string_view b) {
  const int c = CompareBytes(a.data(), b.data(), a.size() < b.size() ? a.size() : b.size());
  if (c != 0) return c;
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

// Checks the size limits. InvalidArgument says which limit was broken.
Status KeySizeError(std::size_t size);
Status ValueSizeError(std::size_t size);
inline Status ValidateKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeySize) [[unlikely]] return KeySizeError(key.size());
  return Status::Ok();
}
inline Status ValidateValue(std::string_view value) {
  if (value.size() > kMaxValueSize) [[unlikely]] return ValueSizeError(value.size());
  return Status::Ok();
}

class BTree;

// Where a Get found its key: lets a later same-size Put of that key write in
// place without descending again. Valid only while the tree's structure is
// unchanged (no insert, delete, split or merge since), which Put checks.
struct LeafHint {
  PageId leaf = kNoPage;
  std::uint32_t index = 0;
  std::uint64_t version = ~std::uint64_t{0};
  // The value's size and form when read: a same-size inline replacement of
  // an existing key never allocates pages, hinted or not.
  std::uint32_t value_size = 0;
  bool inline_value = false;
  bool valid() const { return version != ~std::uint64_t{0}; }
};

// A position in the tree, for ordered iteration in either direction.
class Cursor {
 public:
  explicit Cursor(const BTree& tree) : tree_(&tree) {}

  void SeekFirst();
  void SeekLast();
  // The first entry with key >= target.
  void SeekGE(std::string_view target);
  // The last entry with key < target.
  void SeekLT(std::string_view target);

  bool Valid() const { return valid_; }
  // REQUIRES: Valid().
  void Next();
  void Prev();
  std::string_view key() const;
  // The value; for overflow values it is read into a buffer owned by the
  // cursor, valid until the cursor moves.
  std::string_view value();

 private:
  struct Frame {
    PageId page;
    std::uint32_t index;
  };
  void DescendEdge(bool leftmost);
  // Positions the stack at target's leaf slot; false if the tree is empty.
  bool DescendTo(std::string_view target);
  void SettleForward();   // move past the end of a leaf to the next one
  void SettleBackward();  // index == -1 in leaf → previous leaf

  const BTree* tree_;
  Frame stack_[64];
  int depth_ = 0;  // frames in stack_; the leaf is stack_[depth_ - 1]
  bool valid_ = false;
  std::string overflow_buffer_;
};

struct ScanOptions {
  std::string_view start;  // inclusive; empty = from the first key
  std::string_view end;    // exclusive; empty = to the last key
  bool has_end = false;    // distinguishes "no end" from an empty end key
  bool reverse = false;
  std::uint64_t limit = 0;  // 0 = no limit
};

// Bounds [start, end) of every key with `prefix`. An empty `end` with
// has_end == false means no upper bound (prefix of all 0xFF bytes).
ScanOptions PrefixScan(std::string_view prefix, std::string* end_storage);

class BTree {
 public:
  // The tree whose root is recorded in `arena`'s superblock.
  explicit BTree(Arena* arena) : arena_(arena) {}

  // NotFound if absent. Fills *hint (if given) when found.
  Status Get(std::string_view key, std::string* value, LeafHint* hint = nullptr) const;
  bool Contains(std::string_view key) const;
  // Looks up n keys at once (n <= kMaxBatch), descending the tree for all of
  // them in lockstep so that their cache misses overlap instead of queueing
  // one behind the other (as RocksDB's MultiGet does for reads). statuses[i]
  // is ok or NotFound; hints (optional) as Get's.
  static constexpr std::size_t kMaxBatch = 16;
  void GetMany(const std::string_view* keys, std::size_t n, std::string* values, Status* statuses,
               LeafHint* hints = nullptr) const;
  // Finds where n keys are, descending for them in lockstep as GetMany does
  // (their misses overlap), without reading values: hints[i] is where key i
  // is, or an invalid hint if it is absent. For a batch of independent
  // transactions about to read those keys: given the hints, Txn::GetMany
  // reads them without descending the tree. No effect on state.
  void Locate(const std::string_view* keys, std::size_t n, LeafHint* hints) const;
  // Reads key's value through a hint from Get, GetMany or Locate, if the
  // hint still points at key (the tree's shape unchanged since, and key in
  // that slot): true, with *value and *where filled. Otherwise false and
  // nothing read: the caller looks the key up.
  bool GetAt(const LeafHint& hint, std::string_view key, std::string* value, LeafHint* where) const;
  // Inserts or replaces. InvalidArgument for keys or values over the limits;
  // OutOfSpace if the arena cannot grow (the tree is unchanged then).
  // A hint from Get() on the same key speeds up same-size replacement.
  Status Put(std::string_view key, std::string_view value, const LeafHint* hint = nullptr);
  // NotFound if absent.
  Status Delete(std::string_view key);

  // Calls fn(key, value) for each entry in range, in order; stops when fn
  // returns false. The tree must not be modified from fn.
  void Scan(const ScanOptions& options,
            const std::function<bool(std::string_view, std::string_view)>& fn) const;

  std::uint64_t Count() const { return arena_->entry_count(); }
  // Entries with start <= key < end (end empty and !has_end: unbounded).
  std::uint64_t CountRange(const ScanOptions& options) const;

  // Returns free pages to the arena so that it shrinks after deletes: the
  // free pages at its end (Arena::TrimFreeTail), and, when more pages are
  // free than live (and at least kShrinkMinFreePages), every live page above
  // the live count is moved down into a free page below it (the references
  // to it rewritten) and the arena ends at its live pages. Changes no entry;
  // invalidates hints and cursors when it moves pages. Never allocates.
  // REQUIRES: no journal active. Returns the pages returned.
  static constexpr std::uint32_t kShrinkMinFreePages = 16;
  std::uint32_t Shrink();

  // Pages a Put(key, value) may allocate at most (for Arena::Reserve).
  std::uint32_t PagesNeededForPut(std::size_t key_size, std::size_t value_size) const;

  // Walks the whole tree and returns Corruption naming the first broken
  // invariant (see the file comment).
  Status Check() const;

  const Arena& arena() const { return *arena_; }

 private:
  friend class Cursor;
  struct Path;

  // Whether hint still points at key's slot: same tree shape, and the key
  // found there.
  bool HintMatches(const LeafHint& hint, std::string_view key) const;
  // Where leaf `page`'s slot idx is, as a hint valid until the shape changes.
  LeafHint HintAt(PageId page, std::uint32_t idx) const;
  // Reads the value in leaf `page`'s slot idx; fills *hint if given.
  void ReadAt(PageId page, std::uint32_t idx, std::string* value, LeafHint* hint) const;
  Status PutImpl(std::string_view key, std::string_view value);
  Status InsertIntoLeaf(Path& path, std::string_view key, std::string_view value,
                        bool overflow_value, PageId overflow_head);
  Status InsertSeparator(Path& path, int level, std::string_view sep, PageId left, PageId right);
  bool ShareWithSibling(Path& path, int level, std::uint32_t mine);
  static std::string ShortestSeparator(std::string_view left_last, std::string_view right_first);
  void RebalanceAfterDelete(Path& path);
  Result<PageId> WriteOverflow(std::string_view value);
  void FreeOverflow(PageId head);
  // Shrink's relocation: moves every page of the subtree at `page` (a node
  // at `depth` of a tree of `height`) found at or above `limit` into the
  // next of `to`, rewriting the references to it.
  void MoveBelow(PageId page, std::uint32_t depth, std::uint32_t height, PageId limit,
                 const std::vector<PageId>& to, std::size_t* next);
  void ReadOverflow(PageId head, std::uint32_t size, std::string* out) const;
  void Descend(std::string_view key, Path* path) const;
  void DescendMany(const std::string_view* keys, std::size_t n, PageId* pages,
                   std::uint32_t* idx, bool* found) const;

  Arena* arena_;
  // Bumped by every change to the tree's shape; see LeafHint.
  std::uint64_t structure_version_ = 0;
};

}  // namespace keepstate::engine
