// The page format of the B+tree's nodes and overflow pages: constants, the
// read accessors and search over one node (Node), and the node writers
// (btree_node.cc). Private to the engine, shared by the tree operations
// (btree.cc), the cursor (btree_cursor.cc) and the checker (btree_check.cc),
// as SQLite's btreeInt.h is by its btree*.c. docs/engine.md is the spec; the
// static_asserts below pin what it promises.
//
//   node header (24 bytes, every tree page):
//     u8 type (kLeaf | kInternal), u8 zero, u16 count, u32 heap, u32 frag,
//     u32 right (internal: rightmost child; leaf: zero), u16 prefix_len,
//     6 zero bytes
//   slots: count × 8 bytes, sorted by key, from byte 24 upwards:
//     u32 head, u16 cell offset, u16 zero. Every key in the node starts with
//     the same prefix_len bytes (the node's prefix); head is the next 4 key
//     bytes, zero padded, big-endian, so that comparing heads as integers
//     orders keys without touching their cells whenever the heads differ.
//   cells: packed at the end of the page, from `heap` to page_size
//     leaf cell:     u16 klen, u32 vfield, key, value (inline) | u32 page
//                    vfield = vlen, with kOverflowBit set if the value lives
//                    in an overflow chain starting at the trailing page id
//     internal cell: u16 klen, u32 child, key   (child holds keys < key)
//   `frag` counts dead cell bytes between heap and page_size; a node is
//   compacted when an insert needs them.
//
//   overflow page: u8 kOverflow, 3 zero bytes, u32 used, 4 zero, u32 next,
//                  then `used` value bytes.
//
// Invariants of a node (BTree::Check verifies them): heap lies between the
// end of the slots and page_size; every slot points into the cell heap; the
// live cells plus frag fill heap..page_size exactly; every key starts with
// the node's prefix and its slot's head is Head(key, prefix_len); keys are
// strictly increasing. No cell is larger than MaxCell, so three always fit.
//
// All integers are little-endian (WebAssembly and x86 are); Load/Save use
// memcpy so that unaligned access is well defined.
//
// Everything a lookup runs is defined here, inline (the search path forced
// always_inline), so that every file of the module inlines it as btree.cc
// did when it held it all; only the writers, off the search path, are out of
// line in btree_node.cc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/engine/btree.h"

namespace keepstate::engine {

inline constexpr std::uint8_t kLeaf = 1;
inline constexpr std::uint8_t kInternal = 2;
inline constexpr std::uint8_t kOverflow = 3;
inline constexpr std::uint32_t kHeader = 24;
inline constexpr std::uint32_t kSlot = 8;
inline constexpr std::uint32_t kCellHeader = 6;  // u16 klen + u32 vfield/child
inline constexpr std::uint32_t kOverflowBit = 0x80000000u;
inline constexpr int kMaxHeight = 64;

static_assert(kMaxValueSize < kOverflowBit, "value length must leave the overflow bit free");
static_assert(kMinPageSize / 3 > kCellHeader + kMaxKeySize + 4 + kSlot + kHeader,
              "a max-size key with an overflow reference must fit three to a page");
static_assert(kMaxKeySize < 0xFFFF, "prefix_len and klen are u16");

template <typename T>
T Load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
void Save(std::uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// Largest cell allowed in a node: three always fit, so a split of a full node
// plus one cell yields two halves that fit.
inline std::uint32_t MaxCell(std::uint32_t page_size) { return (page_size - kHeader) / 3 - kSlot; }

// The 4 key bytes after `prefix_len`, zero padded, as a big-endian integer.
// Branch free for any key of 4 bytes or more: one load of the 4 bytes that
// end where the head ends, shifted so that bytes before prefix_len drop out
// (a leaf's prefix often leaves fewer than 4 bytes of its keys).
inline std::uint32_t Head(std::string_view key, std::size_t prefix_len) {
  if (key.size() >= 4) [[likely]] {
    const std::size_t end = std::min(prefix_len + 4, key.size());  // >= 4
    std::uint32_t w;
    std::memcpy(&w, key.data() + end - 4, 4);
    const std::size_t bytes = end - std::min(end, prefix_len);  // 0..4 key bytes in the head
    return static_cast<std::uint32_t>(std::uint64_t{__builtin_bswap32(w)} << (32 - 8 * bytes));
  }
  std::uint32_t h = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    h <<= 8;
    if (prefix_len + i < key.size()) h |= static_cast<unsigned char>(key[prefix_len + i]);
  }
  return h;
}

// A sink the compiler cannot drop, for loads done only for their side effect
// on the cache.
inline volatile std::uint32_t g_touch_sink;

// Read-only accessors over a node page. The search path is forced inline:
// em++ otherwise keeps Search and Resolve as calls, one per tree level.
struct Node {
  // Loads one byte of every cache line of the slot array. The loads are
  // independent, so the CPU overlaps their misses; the binary search that
  // follows then hits the cache instead of paying one dependent miss per
  // probe. (WebAssembly has no prefetch instruction; plain loads work.)
  // The first kBlindTouchBytes are loaded before the header is read, so the
  // header's miss overlaps the slots' instead of preceding them; only a node
  // with more slots than that waits for its count to load the rest.
  static constexpr std::uint32_t kBlindTouchBytes = 1024;  // <= kMinPageSize
  [[gnu::always_inline]] void TouchSlots() const {
    std::uint32_t acc = 0;
    for (std::uint32_t off = 0; off < kBlindTouchBytes; off += 64) acc += p[off];
    const std::uint32_t end = kHeader + kSlot * count();
    for (std::uint32_t off = kBlindTouchBytes; off < end; off += 64) acc += p[off];
    g_touch_sink = acc;
  }

  const std::uint8_t* p;

  std::uint8_t type() const { return p[0]; }
  bool leaf() const { return p[0] == kLeaf; }
  std::uint32_t count() const { return Load<std::uint16_t>(p + 2); }
  std::uint32_t heap() const { return Load<std::uint32_t>(p + 4); }
  std::uint32_t frag() const { return Load<std::uint32_t>(p + 8); }
  PageId right() const { return Load<std::uint32_t>(p + 12); }
  std::uint32_t prefix_len() const { return Load<std::uint16_t>(p + 16); }
  std::uint32_t head(std::uint32_t i) const { return Load<std::uint32_t>(p + kHeader + kSlot * i); }
  std::uint32_t slot(std::uint32_t i) const { return Load<std::uint16_t>(p + kHeader + kSlot * i + 4); }
  const std::uint8_t* cell(std::uint32_t i) const { return p + slot(i); }
  std::string_view key(std::uint32_t i) const {
    const std::uint8_t* c = cell(i);
    return {reinterpret_cast<const char*>(c + kCellHeader), Load<std::uint16_t>(c)};
  }
  std::uint32_t field(std::uint32_t i) const { return Load<std::uint32_t>(cell(i) + 2); }
  PageId child(std::uint32_t i) const { return i < count() ? field(i) : right(); }
  std::uint32_t cell_size(std::uint32_t i) const {
    const std::uint8_t* c = cell(i);
    std::uint32_t size = kCellHeader + Load<std::uint16_t>(c);
    if (leaf()) {
      const std::uint32_t vf = Load<std::uint32_t>(c + 2);
      size += (vf & kOverflowBit) ? 4 : vf;
    }
    return size;
  }
  // Bytes in use: header, slots and live cells.
  std::uint32_t used(std::uint32_t page_size) const {
    return kHeader + kSlot * count() + (page_size - heap()) - frag();
  }
  std::uint32_t free_contiguous() const { return heap() - kHeader - kSlot * count(); }

  // Compares target with key i (< 0: target is smaller). REQUIRES: target
  // starts with the node's prefix; th is Head(target, prefix_len()).
  [[gnu::always_inline]] int CompareAt(std::uint32_t i, std::string_view target, std::uint32_t th) const {
    const std::uint32_t kh = head(i);
    if (th != kh) return th < kh ? -1 : 1;
    const std::size_t skip = prefix_len() + 4;
    const std::string_view k = key(i);
    if (k.size() <= skip || target.size() <= skip) {
      return CompareKeys(target, k);
    }
    return CompareKeys(target.substr(skip), k.substr(skip));
  }

  // Where target falls relative to the node's prefix, judged by key `ref`
  // (every key of the node starts with the prefix): -1 below every key, +1
  // above every key, 0 if it starts with the prefix (heads apply). The
  // caller picks as ref the key whose cell it reads anyway, so that the
  // check costs no cache miss of its own.
  [[gnu::always_inline]] int PrefixOrder(std::string_view target, std::uint32_t ref) const {
    const std::uint32_t plen = prefix_len();
    if (plen == 0) return 0;
    const std::size_t n = std::min<std::size_t>(plen, target.size());
    const int c = CompareBytes(target.data(), key(ref).data(), n);
    if (c != 0) return c < 0 ? -1 : 1;
    return target.size() < plen ? -1 : 0;
  }

  // The first index in [begin, end) whose head is >= h, or end. Branch free
  // (a select per halving): on random keys a branching binary search
  // mispredicts about every other probe. REQUIRES: begin < end.
  [[gnu::always_inline]] std::uint32_t FirstHeadAtLeast(std::uint32_t h, std::uint32_t begin, std::uint32_t end) const {
    std::uint32_t base = begin, len = end - begin;
    while (len > 1) {
      const std::uint32_t half = len / 2;
      base = head(base + half) < h ? base + half : base;
      len -= half;
    }
    return base + (head(base) < h ? 1 : 0);
  }

  // A search in two steps, so that a batch of lookups can issue the loads of
  // every key's candidate cell before any of them is needed (DescendMany):
  // Probe searches the slot heads only; Resolve reads the cell at the probe
  // and finishes. Search does both.
  struct Probe {
    std::uint32_t th;  // Head(target, prefix_len())
    std::uint32_t lo;  // the first slot whose head is >= th
  };
  // REQUIRES: count() > 0.
  [[gnu::always_inline]] Probe HeadProbe(std::string_view target) const {
    const std::uint32_t th = Head(target, prefix_len());
    return {th, FirstHeadAtLeast(th, 0, count())};
  }
  // Loads the cell Resolve will read first: the candidate key and, in an
  // internal node, the child pointer beside it.
  std::uint32_t TouchProbe(Probe probe) const { return *cell(probe.lo < count() ? probe.lo : count() - 1); }

  // First index whose key is >= target (upper = false) or > target (upper).
  // Heads order keys whenever they differ, so the search runs over heads and
  // compares whole keys only among slots whose head equals the target's
  // (usually none, or the one exact match). REQUIRES: count() > 0.
  [[gnu::always_inline]] std::uint32_t Resolve(std::string_view target, Probe probe, bool upper, bool* found) const {
    *found = false;
    const std::uint32_t n = count();
    const std::uint32_t th = probe.th, lo = probe.lo;
    // The prefix is checked after the head search, against the key at lo:
    // the cell a hit (leaf) or a descent (internal node) reads next. If the
    // target lacks the prefix, lo is meaningless but the check alone places
    // the target below or above every key.
    const int po = PrefixOrder(target, lo < n ? lo : n - 1);
    if (po != 0) return po < 0 ? 0 : n;
    if (lo == n || head(lo) != th) return lo;  // every key before lo is smaller, lo's is larger
    if (lo + 1 == n || head(lo + 1) != th) {
      const int c = CompareAt(lo, target, th);
      if (!upper) *found = c == 0;
      return c > 0 || (upper && c == 0) ? lo + 1 : lo;
    }
    // Several heads equal the target's: binary search them by whole keys.
    std::uint32_t a = lo;
    std::uint32_t b = th == 0xFFFFFFFFu ? n : FirstHeadAtLeast(th + 1, lo + 1, n);
    const std::uint32_t end = b;
    while (a < b) {
      const std::uint32_t mid = (a + b) / 2;
      const int c = CompareAt(mid, target, th);
      if (c > 0 || (upper && c == 0)) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    if (!upper) *found = a < end && CompareAt(a, target, th) == 0;
    return a;
  }
  [[gnu::always_inline]] std::uint32_t Search(std::string_view target, bool upper, bool* found) const {
    *found = false;
    if (count() == 0) return 0;
    TouchSlots();
    return Resolve(target, HeadProbe(target), upper, found);
  }
  std::uint32_t LowerBound(std::string_view target, bool* found) const {
    return Search(target, false, found);
  }
  // The child to descend into: the first separator > target.
  std::uint32_t UpperBound(std::string_view target) const {
    bool unused;
    return Search(target, true, &unused);
  }
};

// ---- Writing nodes ---------------------------------------------------------
//
// p is a node page of page_size bytes that the caller may write (Arena::Write).

inline void InitNode(std::uint8_t* p, std::uint8_t type, std::uint32_t page_size, PageId right) {
  std::memset(p, 0, kHeader);
  p[0] = type;
  Save<std::uint32_t>(p + 4, page_size);
  Save<std::uint32_t>(p + 12, right);
}
inline void SetRight(std::uint8_t* p, PageId r) { Save<std::uint32_t>(p + 12, r); }
inline void SetChild(std::uint8_t* p, std::uint32_t i, PageId child) {
  Node n{p};
  if (i < n.count()) {
    Save<std::uint32_t>(p + n.slot(i) + 2, child);
  } else {
    SetRight(p, child);
  }
}

// A cell to be written: header fields, key, and an optional payload.
struct CellParts {
  std::string_view key;
  std::uint32_t field;      // vfield (leaf) or child (internal)
  std::string_view inline_value;
  bool has_overflow_ref = false;
  PageId overflow_ref = kNoPage;

  std::uint32_t size() const {
    return kCellHeader + static_cast<std::uint32_t>(key.size()) +
           (has_overflow_ref ? 4 : static_cast<std::uint32_t>(inline_value.size()));
  }
  void WriteTo(std::uint8_t* c) const {
    Save<std::uint16_t>(c, static_cast<std::uint16_t>(key.size()));
    Save<std::uint32_t>(c + 2, field);
    std::memcpy(c + kCellHeader, key.data(), key.size());
    std::uint8_t* v = c + kCellHeader + key.size();
    if (has_overflow_ref) {
      Save<std::uint32_t>(v, overflow_ref);
    } else if (!inline_value.empty()) {
      std::memcpy(v, inline_value.data(), inline_value.size());
    }
  }
};

struct CellRef {
  const std::uint8_t* bytes;
  std::uint32_t size;
};

inline std::string_view CellKey(const CellRef& c) {
  return {reinterpret_cast<const char*>(c.bytes + kCellHeader), Load<std::uint16_t>(c.bytes)};
}

// Inserts a cell at slot `index` if it fits (compacting if needed), keeping
// the node's prefix a common prefix of all its keys.
bool TryInsertCell(std::uint8_t* p, std::uint32_t page_size, std::uint32_t index,
                   const CellParts& cell, std::vector<std::uint8_t>* scratch);
// Removes slot `index`, its cell's bytes becoming free (at the heap's edge)
// or fragment.
void RemoveSlot(std::uint8_t* p, std::uint32_t index);
// Writes `cells` (sorted) into an empty node page; the prefix is the common
// prefix of the first and last key, hence of all.
void BuildNode(std::uint8_t* p, std::uint8_t type, std::uint32_t page_size, PageId right,
               const CellRef* cells, std::size_t n);

// ---- The path of a descent --------------------------------------------------

// The nodes visited from the root to a leaf, with the slot taken at each.
struct BTree::Path {
  PageId page[kMaxHeight];
  std::uint32_t index[kMaxHeight];
  int height = 0;
  bool found = false;
};

}  // namespace keepstate::engine
