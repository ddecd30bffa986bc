// B+tree on arena pages. Page layouts (docs/engine.md is the spec):
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
// All integers are little-endian (WebAssembly and x86 are); Load/Store use
// memcpy so that unaligned access is well defined.
#include "keepstate/engine/btree.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

namespace keepstate::engine {
namespace {

constexpr std::uint8_t kLeaf = 1;
constexpr std::uint8_t kInternal = 2;
constexpr std::uint8_t kOverflow = 3;
constexpr std::uint32_t kHeader = 24;
constexpr std::uint32_t kSlot = 8;
constexpr std::uint32_t kCellHeader = 6;  // u16 klen + u32 vfield/child
constexpr std::uint32_t kOverflowBit = 0x80000000u;
constexpr int kMaxHeight = 64;

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
void Store(std::uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// Largest cell allowed in a node: three always fit, so a split of a full node
// plus one cell yields two halves that fit.
std::uint32_t MaxCell(std::uint32_t page_size) { return (page_size - kHeader) / 3 - kSlot; }

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

std::size_t CommonPrefix(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// A sink the compiler cannot drop, for loads done only for their side effect
// on the cache.
volatile std::uint32_t g_touch_sink;

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

void InitNode(std::uint8_t* p, std::uint8_t type, std::uint32_t page_size, PageId right) {
  std::memset(p, 0, kHeader);
  p[0] = type;
  Store<std::uint32_t>(p + 4, page_size);
  Store<std::uint32_t>(p + 12, right);
}

void SetCount(std::uint8_t* p, std::uint32_t n) { Store<std::uint16_t>(p + 2, static_cast<std::uint16_t>(n)); }
void SetHeap(std::uint8_t* p, std::uint32_t h) { Store<std::uint32_t>(p + 4, h); }
void SetFrag(std::uint8_t* p, std::uint32_t f) { Store<std::uint32_t>(p + 8, f); }
void SetRight(std::uint8_t* p, PageId r) { Store<std::uint32_t>(p + 12, r); }
void SetPrefixLen(std::uint8_t* p, std::uint32_t n) { Store<std::uint16_t>(p + 16, static_cast<std::uint16_t>(n)); }
void SetSlot(std::uint8_t* p, std::uint32_t i, std::uint32_t head, std::uint32_t off) {
  std::uint8_t* s = p + kHeader + kSlot * i;
  Store<std::uint32_t>(s, head);
  Store<std::uint16_t>(s + 4, static_cast<std::uint16_t>(off));
  Store<std::uint16_t>(s + 6, 0);
}
void SetChild(std::uint8_t* p, std::uint32_t i, PageId child) {
  Node n{p};
  if (i < n.count()) {
    Store<std::uint32_t>(p + n.slot(i) + 2, child);
  } else {
    SetRight(p, child);
  }
}

// Sets the node's prefix to `plen` bytes and recomputes every head.
// REQUIRES: every key of the node shares its first plen bytes.
void SetPrefix(std::uint8_t* p, std::uint32_t plen) {
  SetPrefixLen(p, plen);
  Node n{p};
  for (std::uint32_t i = 0; i < n.count(); ++i) SetSlot(p, i, Head(n.key(i), plen), n.slot(i));
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
    Store<std::uint16_t>(c, static_cast<std::uint16_t>(key.size()));
    Store<std::uint32_t>(c + 2, field);
    std::memcpy(c + kCellHeader, key.data(), key.size());
    std::uint8_t* v = c + kCellHeader + key.size();
    if (has_overflow_ref) {
      Store<std::uint32_t>(v, overflow_ref);
    } else if (!inline_value.empty()) {
      std::memcpy(v, inline_value.data(), inline_value.size());
    }
  }
};

// Appends an already encoded cell at the heap and returns its offset.
// REQUIRES: free_contiguous() >= size + kSlot (the slot is written by the caller).
std::uint32_t PushCellBytes(std::uint8_t* p, const std::uint8_t* cell, std::uint32_t size) {
  const std::uint32_t heap = Node{p}.heap() - size;
  std::memcpy(p + heap, cell, size);
  SetHeap(p, heap);
  return heap;
}

// Rewrites the node's cells contiguously, dropping dead bytes.
void Compact(std::uint8_t* p, std::uint32_t page_size, std::vector<std::uint8_t>* scratch) {
  scratch->resize(page_size);
  std::memcpy(scratch->data(), p, page_size);
  const Node old{scratch->data()};
  std::uint32_t heap = page_size;
  for (std::uint32_t i = 0; i < old.count(); ++i) {
    const std::uint32_t size = old.cell_size(i);
    heap -= size;
    std::memcpy(p + heap, old.cell(i), size);
    SetSlot(p, i, old.head(i), heap);
  }
  SetHeap(p, heap);
  SetFrag(p, 0);
}

// Inserts a cell at slot `index` if it fits (compacting if needed), keeping
// the node's prefix a common prefix of all its keys.
bool TryInsertCell(std::uint8_t* p, std::uint32_t page_size, std::uint32_t index,
                   const CellParts& cell, std::vector<std::uint8_t>* scratch) {
  Node n{p};
  const std::uint32_t size = cell.size();
  if (n.free_contiguous() < size + kSlot) {
    if (n.free_contiguous() + n.frag() < size + kSlot) return false;
    Compact(p, page_size, scratch);
  }
  const std::uint32_t count = n.count();
  if (count == 0) {
    SetPrefixLen(p, 0);
  } else {
    const std::uint32_t plen = n.prefix_len();
    if (plen > 0) {
      const std::size_t common = CommonPrefix(cell.key, n.key(0));
      if (common < plen) SetPrefix(p, static_cast<std::uint32_t>(common));
    }
  }
  const std::uint32_t heap = n.heap() - size;
  cell.WriteTo(p + heap);
  SetHeap(p, heap);
  std::uint8_t* slots = p + kHeader;
  std::memmove(slots + kSlot * (index + 1), slots + kSlot * index, kSlot * (count - index));
  SetSlot(p, index, Head(cell.key, n.prefix_len()), heap);
  SetCount(p, count + 1);
  // A node that started empty (a new root, the first leaf) or lost its end
  // keys to deletes has a shorter prefix than its keys share; then its heads
  // do not tell its keys apart (a root over "account:..." keys with prefix
  // 0 has the head "acco" in every slot) and each search falls back to
  // comparing whole keys. The keys' common prefix is that of the first and
  // last key: take it when it is longer.
  if (index == 0 || index == count) {
    const std::size_t common = CommonPrefix(n.key(0), n.key(count));
    if (common > n.prefix_len()) SetPrefix(p, static_cast<std::uint32_t>(common));
  }
  return true;
}

void RemoveSlot(std::uint8_t* p, std::uint32_t index) {
  Node n{p};
  const std::uint32_t size = n.cell_size(index);
  if (n.slot(index) == n.heap()) {
    SetHeap(p, n.heap() + size);
  } else {
    SetFrag(p, n.frag() + size);
  }
  const std::uint32_t count = n.count();
  std::uint8_t* slots = p + kHeader;
  std::memmove(slots + kSlot * index, slots + kSlot * (index + 1), kSlot * (count - index - 1));
  SetCount(p, count - 1);
}

struct CellRef {
  const std::uint8_t* bytes;
  std::uint32_t size;
};

std::string_view CellKey(const CellRef& c) {
  return {reinterpret_cast<const char*>(c.bytes + kCellHeader), Load<std::uint16_t>(c.bytes)};
}

// Writes `cells` (sorted) into an empty node page; the prefix is the common
// prefix of the first and last key, hence of all.
void BuildNode(std::uint8_t* p, std::uint8_t type, std::uint32_t page_size, PageId right,
               const CellRef* cells, std::size_t n) {
  InitNode(p, type, page_size, right);
  const std::size_t plen = n == 0 ? 0 : CommonPrefix(CellKey(cells[0]), CellKey(cells[n - 1]));
  SetPrefixLen(p, static_cast<std::uint32_t>(plen));
  for (std::size_t i = 0; i < n; ++i) {
    SetSlot(p, static_cast<std::uint32_t>(i), Head(CellKey(cells[i]), plen),
            PushCellBytes(p, cells[i].bytes, cells[i].size));
  }
  SetCount(p, static_cast<std::uint32_t>(n));
}

}  // namespace

Status KeySizeError(std::size_t size) {
  if (size == 0) return Status::InvalidArgument("key is empty (keys are 1 to 1024 bytes)");
  return Status::InvalidArgument("key of " + std::to_string(size) +
                                 " bytes exceeds the 1024-byte limit");
}

Status ValueSizeError(std::size_t size) {
  return Status::InvalidArgument("value of " + std::to_string(size) +
                                 " bytes exceeds the 16 MiB limit");
}

ScanOptions PrefixScan(std::string_view prefix, std::string* end_storage) {
  ScanOptions o;
  o.start = prefix;
  end_storage->assign(prefix);
  while (!end_storage->empty() && static_cast<unsigned char>(end_storage->back()) == 0xFF) {
    end_storage->pop_back();
  }
  if (!end_storage->empty()) {
    end_storage->back() = static_cast<char>(static_cast<unsigned char>(end_storage->back()) + 1);
    o.end = *end_storage;
    o.has_end = true;
  }
  return o;
}

// The nodes visited from the root to a leaf, with the slot taken at each.
struct BTree::Path {
  PageId page[kMaxHeight];
  std::uint32_t index[kMaxHeight];
  int height = 0;
  bool found = false;
};

// Scratch buffers for splits, merges and compaction: sized to a
// page or two, reused, so steady-state writes do not allocate.
namespace {
struct Scratch {
  std::vector<std::uint8_t> page_a, page_b, cell;
  std::vector<CellRef> cells, shared;
};
Scratch& GetScratch() {
  static Scratch scratch;
  return scratch;
}
}  // namespace

void BTree::Descend(std::string_view key, Path* path) const {
  const std::uint32_t height = arena_->tree_height();
  PageId page = arena_->root();
  path->height = static_cast<int>(height);
  path->found = false;
  for (std::uint32_t level = 0; level < height; ++level) {
    const Node n{arena_->Read(page)};
    path->page[level] = page;
    if (n.leaf()) {
      path->index[level] = n.LowerBound(key, &path->found);
    } else {
      const std::uint32_t idx = n.UpperBound(key);
      path->index[level] = idx;
      page = n.child(idx);
    }
  }
}

Status BTree::Get(std::string_view key, std::string* value, LeafHint* hint) const {
  std::uint32_t height = arena_->tree_height();
  PageId page = arena_->root();
  if (height == 0) return Status::NotFound("key not found");
  while (--height > 0) {
    const Node n{arena_->Read(page)};
    page = n.child(n.UpperBound(key));
  }
  const Node leaf{arena_->Read(page)};
  bool found;
  const std::uint32_t idx = leaf.LowerBound(key, &found);
  if (!found) return Status::NotFound("key not found");
  ReadAt(page, idx, value, hint);
  return Status::Ok();
}

LeafHint BTree::HintAt(PageId page, std::uint32_t idx) const {
  const std::uint32_t vf = Node{arena_->Read(page)}.field(idx);
  return {page, idx, structure_version_, vf & ~kOverflowBit, !(vf & kOverflowBit)};
}

void BTree::ReadAt(PageId page, std::uint32_t idx, std::string* value, LeafHint* hint) const {
  const std::uint8_t* c = Node{arena_->Read(page)}.cell(idx);
  const std::uint32_t vf = Load<std::uint32_t>(c + 2);
  if (hint != nullptr) *hint = HintAt(page, idx);
  const std::uint8_t* v = c + kCellHeader + Load<std::uint16_t>(c);
  if (vf & kOverflowBit) {
    ReadOverflow(Load<std::uint32_t>(v), vf & ~kOverflowBit, value);
  } else {
    value->assign(reinterpret_cast<const char*>(v), vf);
  }
}

// Descends the tree for n keys in lockstep: at each level every key's node
// is touched before any is searched, and every search's cell before any
// search finishes, so the cache misses of all keys overlap.
// Leaves pages[i] at key i's leaf and idx[i]/found[i] at its slot.
void BTree::DescendMany(const std::string_view* keys, std::size_t n, PageId* pages,
                        std::uint32_t* idx, bool* found) const {
  // Each level in three passes over the keys, so that no key's miss waits
  // behind another's: load every node's slots; search every node's heads
  // and load the cell each search ends at; then finish every search.
  Node::Probe probes[kMaxBatch];
  std::uint32_t touch = 0;
  const std::uint32_t height = arena_->tree_height();
  for (std::size_t i = 0; i < n; ++i) pages[i] = arena_->root();
  for (std::uint32_t level = 1; level <= height; ++level) {
    for (std::size_t i = 0; i < n; ++i) Node{arena_->Read(pages[i])}.TouchSlots();
    for (std::size_t i = 0; i < n; ++i) {
      const Node node{arena_->Read(pages[i])};
      if (node.count() == 0) continue;  // only an empty root leaf
      probes[i] = node.HeadProbe(keys[i]);
      touch += node.TouchProbe(probes[i]);
    }
    const bool leaves = level == height;
    for (std::size_t i = 0; i < n; ++i) {
      const Node node{arena_->Read(pages[i])};
      if (node.count() == 0) {
        idx[i] = 0;
        found[i] = false;
      } else if (leaves) {
        idx[i] = node.Resolve(keys[i], probes[i], /*upper=*/false, &found[i]);
      } else {
        bool unused;
        pages[i] = node.child(node.Resolve(keys[i], probes[i], /*upper=*/true, &unused));
      }
    }
  }
  g_touch_sink = touch;
}

void BTree::Locate(const std::string_view* keys, std::size_t n, LeafHint* hints) const {
  for (std::size_t i = 0; i < n; ++i) hints[i] = LeafHint{};
  if (arena_->tree_height() == 0) return;
  PageId pages[kMaxBatch];
  std::uint32_t idx[kMaxBatch];
  bool found[kMaxBatch];
  for (std::size_t begin = 0; begin < n; begin += kMaxBatch) {
    const std::size_t m = std::min(kMaxBatch, n - begin);
    DescendMany(keys + begin, m, pages, idx, found);
    for (std::size_t i = 0; i < m; ++i) {
      if (found[i]) hints[begin + i] = HintAt(pages[i], idx[i]);
    }
  }
}

bool BTree::GetAt(const LeafHint& hint, std::string_view key, std::string* value, LeafHint* where) const {
  if (!HintMatches(hint, key)) return false;
  ReadAt(hint.leaf, hint.index, value, where);
  return true;
}

void BTree::GetMany(const std::string_view* keys, std::size_t n, std::string* values,
                    Status* statuses, LeafHint* hints) const {
  assert(n <= kMaxBatch);
  if (arena_->tree_height() == 0) {
    for (std::size_t i = 0; i < n; ++i) statuses[i] = Status::NotFound("key not found");
    return;
  }
  PageId pages[kMaxBatch];
  std::uint32_t idx[kMaxBatch];
  bool found[kMaxBatch];
  DescendMany(keys, n, pages, idx, found);
  for (std::size_t i = 0; i < n; ++i) {
    if (!found[i]) {
      statuses[i] = Status::NotFound("key not found");
      continue;
    }
    ReadAt(pages[i], idx[i], &values[i], hints != nullptr ? &hints[i] : nullptr);
    statuses[i] = Status::Ok();
  }
}

bool BTree::Contains(std::string_view key) const {
  Path path;
  Descend(key, &path);
  return path.found;
}

std::uint32_t BTree::PagesNeededForPut(std::size_t key_size, std::size_t value_size) const {
  const std::uint32_t ps = arena_->page_size();
  std::uint32_t pages = arena_->tree_height() + 2;  // a split per level, a new root
  if (kCellHeader + key_size + value_size > MaxCell(ps)) {
    pages += static_cast<std::uint32_t>((value_size + (ps - kHeader) - 1) / (ps - kHeader));
  }
  return pages;
}

bool BTree::HintMatches(const LeafHint& hint, std::string_view key) const {
  if (hint.version != structure_version_ || hint.leaf >= arena_->page_count()) return false;
  const Node n{arena_->Read(hint.leaf)};
  if (!n.leaf() || hint.index >= n.count()) return false;
  const std::string_view k = n.key(hint.index);
  return k.size() == key.size() && CompareBytes(k.data(), key.data(), key.size()) == 0;
}

Status BTree::Put(std::string_view key, std::string_view value, const LeafHint* hint) {
  // A hinted same-size replacement needs no validation: the key is in the
  // tree and the value has the size of the one it replaces.
  if (hint != nullptr && HintMatches(*hint, key)) {
    const Node n{arena_->Read(hint->leaf)};
    const std::uint32_t vf = n.field(hint->index);
    if (!(vf & kOverflowBit) && vf == value.size()) {
      std::uint8_t* w = arena_->Write(hint->leaf) + n.slot(hint->index) + kCellHeader + key.size();
      CopyBytes(w, value.data(), value.size());
      return Status::Ok();
    }
  }
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  KEEPSTATE_RETURN_IF_ERROR(ValidateValue(value));
  return PutImpl(key, value);
}

Status BTree::PutImpl(std::string_view key, std::string_view value) {
  const std::uint32_t ps = arena_->page_size();
  const bool overflow = kCellHeader + key.size() + value.size() > MaxCell(ps);
  Path path;
  if (arena_->root() != kNoPage) {
    Descend(key, &path);
    if (path.found && !overflow) {
      const Node n{arena_->Read(path.page[path.height - 1])};
      const std::uint32_t idx = path.index[path.height - 1];
      const std::uint32_t vf = n.field(idx);
      if (!(vf & kOverflowBit) && vf == value.size()) {
        // Same-size replacement: overwrite the value bytes in place. It
        // allocates nothing, so it needs no reservation and cannot fail.
        std::uint8_t* w = arena_->Write(path.page[path.height - 1]) + n.slot(idx) + kCellHeader + key.size();
        CopyBytes(w, value.data(), value.size());
        return Status::Ok();
      }
    }
  }
  // After this reservation no allocation below can fail, so a Put either
  // happens completely or (on OutOfSpace here) not at all. Nothing has been
  // modified yet, and the path holds page numbers, which survive the arena
  // moving.
  KEEPSTATE_RETURN_IF_ERROR(arena_->Reserve(PagesNeededForPut(key.size(), value.size())));
  if (arena_->root() == kNoPage) {
    const PageId leaf = arena_->Allocate().value();
    InitNode(arena_->Write(leaf), kLeaf, ps, kNoPage);
    arena_->SetTree(leaf, 1);
    Descend(key, &path);
  }
  const int leaf_level = path.height - 1;
  const PageId leaf = path.page[leaf_level];
  const std::uint32_t idx = path.index[leaf_level];

  if (path.found) {
    const Node n{arena_->Read(leaf)};
    const std::uint8_t* c = n.cell(idx);
    const std::uint32_t vf = Load<std::uint32_t>(c + 2);
    if (vf & kOverflowBit) FreeOverflow(Load<std::uint32_t>(c + kCellHeader + key.size()));
    RemoveSlot(arena_->Write(leaf), idx);
  } else {
    arena_->AddEntries(1);
  }
  ++structure_version_;

  PageId overflow_head = kNoPage;
  if (overflow) overflow_head = WriteOverflow(value).value();
  return InsertIntoLeaf(path, key, value, overflow, overflow_head);
}

Status BTree::InsertIntoLeaf(Path& path, std::string_view key, std::string_view value,
                             bool overflow_value, PageId overflow_head) {
  const std::uint32_t ps = arena_->page_size();
  const int level = path.height - 1;
  const PageId leaf = path.page[level];
  const std::uint32_t idx = path.index[level];
  CellParts cell;
  cell.key = key;
  if (overflow_value) {
    cell.field = static_cast<std::uint32_t>(value.size()) | kOverflowBit;
    cell.has_overflow_ref = true;
    cell.overflow_ref = overflow_head;
  } else {
    cell.field = static_cast<std::uint32_t>(value.size());
    cell.inline_value = value;
  }
  Scratch& s = GetScratch();
  if (TryInsertCell(arena_->Write(leaf), ps, idx, cell, &s.page_a)) return Status::Ok();

  // The leaf is full: gather its cells plus the new one, in order.
  s.page_a.resize(ps);
  std::memcpy(s.page_a.data(), arena_->Read(leaf), ps);
  s.cell.resize(cell.size());
  cell.WriteTo(s.cell.data());
  const Node old{s.page_a.data()};
  s.cells.clear();
  std::uint32_t total = 0;
  for (std::uint32_t i = 0; i <= old.count(); ++i) {
    if (i == idx) s.cells.push_back({s.cell.data(), cell.size()});
    if (i < old.count()) s.cells.push_back({old.cell(i), old.cell_size(i)});
  }
  for (const CellRef& c : s.cells) total += c.size + kSlot;
  bool append = idx == old.count();
  for (int l = 0; append && l < level; ++l) {
    append = path.index[l] == Node{arena_->Read(path.page[l])}.count();  // the rightmost child
  }
  // Keys arriving out of order: first try to move cells into a sibling with
  // room, as a B*-tree does, instead of splitting into two half-empty leaves.
  if (!append && ShareWithSibling(path, level, total)) return Status::Ok();

  // Split in two halves of about equal bytes — except when the new key goes
  // past the largest key of the whole tree (keys arriving in order: an
  // initial load, time-ordered ids). Then the left leaf keeps every old cell
  // and the right one starts with the new cell, so an in-order load leaves
  // its leaves full instead of half empty (which doubled what commits write
  // and restores read). A later insert into a full left leaf splits it
  // evenly as usual.
  const PageId right = arena_->Allocate().value();
  std::size_t k = 0;
  for (std::uint32_t acc = 0; k < s.cells.size() && acc + s.cells[k].size + kSlot <= total / 2; ++k) {
    acc += s.cells[k].size + kSlot;
  }
  if (append) k = s.cells.size() - 1;
  k = std::clamp<std::size_t>(k, 1, s.cells.size() - 1);
  BuildNode(arena_->Write(leaf), kLeaf, ps, kNoPage, s.cells.data(), k);
  BuildNode(arena_->Write(right), kLeaf, ps, kNoPage, s.cells.data() + k, s.cells.size() - k);
  const std::string sep = ShortestSeparator(CellKey(s.cells[k - 1]), CellKey(s.cells[k]));
  return InsertSeparator(path, level - 1, sep, leaf, right);
}

// Shortest key s with left_last < s <= right_first (suffix truncation).
std::string BTree::ShortestSeparator(std::string_view left_last, std::string_view right_first) {
  std::size_t common = 0;
  while (common < left_last.size() && left_last[common] == right_first[common]) ++common;
  return std::string(right_first.substr(0, common + 1));
}

// The full leaf at `level` of path, whose cells plus the one being inserted
// are in the scratch's `cells` (`mine` bytes with their slots), shares them with its right or left sibling
// (same parent) so that both end about equally full, and the parent's
// separator between the two moves accordingly. Returns false, having
// changed nothing, when neither sibling has room for a fair share or the
// parent cannot take the new separator; the caller then splits.
bool BTree::ShareWithSibling(Path& path, int level, std::uint32_t mine) {
  if (level == 0) return false;  // the root has no siblings
  const std::uint32_t ps = arena_->page_size();
  const std::uint32_t capacity = ps - kHeader;
  Scratch& s = GetScratch();
  const PageId leaf = path.page[level];
  const PageId parent = path.page[level - 1];
  const std::uint32_t pidx = path.index[level - 1];  // leaf == child(pidx)
  const Node pn{arena_->Read(parent)};
  for (const bool to_right : {true, false}) {
    if (to_right ? pidx >= pn.count() : pidx == 0) continue;
    const PageId sibling = pn.child(to_right ? pidx + 1 : pidx - 1);
    const Node sn{arena_->Read(sibling)};
    const std::uint32_t theirs = sn.used(ps) - kHeader;
    // Worth it only if both end at most 7/8 full: otherwise the next insert
    // into either would split anyway, having moved cells for nothing.
    if (8 * (mine + theirs) > 7 * 2 * capacity) continue;
    // The two nodes' cells in key order, left node first.
    s.page_b.resize(ps);
    std::memcpy(s.page_b.data(), sn.p, ps);
    const Node copy{s.page_b.data()};
    s.shared.clear();
    for (std::uint32_t i = 0; i < copy.count(); ++i) s.shared.push_back({copy.cell(i), copy.cell_size(i)});
    s.shared.insert(to_right ? s.shared.begin() : s.shared.end(), s.cells.begin(), s.cells.end());
    // Cut near half the bytes, where both sides fit.
    const std::uint32_t half = (mine + theirs) / 2;
    std::size_t k = 0;
    std::uint32_t left_bytes = 0;
    for (; k < s.shared.size() && left_bytes + s.shared[k].size + kSlot <= half; ++k) {
      left_bytes += s.shared[k].size + kSlot;
    }
    while (k < s.shared.size() && mine + theirs - left_bytes > capacity) {
      left_bytes += s.shared[k++].size + kSlot;
    }
    if (k == 0 || k == s.shared.size() || left_bytes > capacity || mine + theirs - left_bytes > capacity) continue;
    const std::string sep = ShortestSeparator(CellKey(s.shared[k - 1]), CellKey(s.shared[k]));
    // The parent's separator between the two nodes: cell sep_idx, whose
    // child is the left node. Replacing it must fit.
    const std::uint32_t sep_idx = to_right ? pidx : pidx - 1;
    const std::uint32_t old_size = pn.cell_size(sep_idx);
    const std::uint32_t new_size = kCellHeader + static_cast<std::uint32_t>(sep.size());
    if (new_size > old_size && pn.free_contiguous() + pn.frag() < new_size - old_size) continue;
    const PageId left_node = to_right ? leaf : sibling;
    const PageId right_node = to_right ? sibling : leaf;
    BuildNode(arena_->Write(left_node), kLeaf, ps, kNoPage, s.shared.data(), k);
    BuildNode(arena_->Write(right_node), kLeaf, ps, kNoPage, s.shared.data() + k, s.shared.size() - k);
    std::uint8_t* pp = arena_->Write(parent);
    RemoveSlot(pp, sep_idx);
    const CellParts cell{sep, left_node, {}, false, kNoPage};
    const bool ok = TryInsertCell(pp, ps, sep_idx, cell, &s.page_a);
    assert(ok);  // checked above: the parent had room for the longer separator
    (void)ok;
    return true;
  }
  return false;
}

// Child `left` of the node at `level` was split into left and right with
// separator `sep`: point its slot at `right` and insert (sep, left) before it.
Status BTree::InsertSeparator(Path& path, int level, std::string_view sep, PageId left,
                              PageId right) {
  const std::uint32_t ps = arena_->page_size();
  if (level < 0) {
    // The root split: a new root above it.
    const PageId root = arena_->Allocate().value();
    std::uint8_t* p = arena_->Write(root);
    InitNode(p, kInternal, ps, right);
    CellParts cell{sep, left, {}, false, kNoPage};
    const bool ok = TryInsertCell(p, ps, 0, cell, &GetScratch().page_a);
    assert(ok);
    (void)ok;
    arena_->SetTree(root, arena_->tree_height() + 1);
    return Status::Ok();
  }
  const PageId page = path.page[level];
  const std::uint32_t idx = path.index[level];
  std::uint8_t* p = arena_->Write(page);
  SetChild(p, idx, right);
  CellParts cell{sep, left, {}, false, kNoPage};
  Scratch& s = GetScratch();
  if (TryInsertCell(p, ps, idx, cell, &s.page_a)) return Status::Ok();

  // Split the internal node around its median cell, which moves up.
  const PageId sibling = arena_->Allocate().value();
  s.page_a.resize(ps);
  std::memcpy(s.page_a.data(), arena_->Read(page), ps);
  s.cell.resize(cell.size());
  cell.WriteTo(s.cell.data());
  const Node old{s.page_a.data()};
  s.cells.clear();
  for (std::uint32_t i = 0; i <= old.count(); ++i) {
    if (i == idx) s.cells.push_back({s.cell.data(), cell.size()});
    if (i < old.count()) s.cells.push_back({old.cell(i), old.cell_size(i)});
  }
  std::uint32_t total = 0;
  for (const CellRef& c : s.cells) total += c.size + kSlot;
  std::size_t m = 0;
  for (std::uint32_t acc = 0; m < s.cells.size() && acc + s.cells[m].size + kSlot <= total / 2; ++m) {
    acc += s.cells[m].size + kSlot;
  }
  m = std::clamp<std::size_t>(m, 1, s.cells.size() - 2);
  const std::uint8_t* mid = s.cells[m].bytes;
  const PageId mid_child = Load<std::uint32_t>(mid + 2);
  const std::string up(reinterpret_cast<const char*>(mid + kCellHeader), Load<std::uint16_t>(mid));
  const PageId old_right = old.right();
  BuildNode(arena_->Write(page), kInternal, ps, mid_child, s.cells.data(), m);
  BuildNode(arena_->Write(sibling), kInternal, ps, old_right, s.cells.data() + m + 1,
            s.cells.size() - m - 1);
  return InsertSeparator(path, level - 1, up, page, sibling);
}

Status BTree::Delete(std::string_view key) {
  KEEPSTATE_RETURN_IF_ERROR(ValidateKey(key));
  Path path;
  if (arena_->root() == kNoPage) return Status::NotFound("key not found");
  Descend(key, &path);
  if (!path.found) return Status::NotFound("key not found");
  const int level = path.height - 1;
  const PageId leaf = path.page[level];
  const std::uint32_t idx = path.index[level];
  const Node n{arena_->Read(leaf)};
  const std::uint8_t* c = n.cell(idx);
  const std::uint32_t vf = Load<std::uint32_t>(c + 2);
  const PageId chain = (vf & kOverflowBit) ? Load<std::uint32_t>(c + kCellHeader + key.size()) : kNoPage;
  ++structure_version_;
  RemoveSlot(arena_->Write(leaf), idx);
  if (chain != kNoPage) FreeOverflow(chain);
  arena_->AddEntries(-1);
  RebalanceAfterDelete(path);
  return Status::Ok();
}

// Walks up the path merging underfull nodes into a sibling when the two fit
// in one page, then shortens the tree while the root has a single child.
void BTree::RebalanceAfterDelete(Path& path) {
  const std::uint32_t ps = arena_->page_size();
  Scratch& s = GetScratch();
  for (int level = path.height - 1; level >= 1; --level) {
    const PageId node = path.page[level];
    if (Node{arena_->Read(node)}.used(ps) >= ps / 4) continue;
    const PageId parent = path.page[level - 1];
    const Node pn{arena_->Read(parent)};
    const std::uint32_t j = path.index[level - 1];
    if (pn.count() == 0) continue;  // no sibling under this parent
    const std::uint32_t sep_idx = j > 0 ? j - 1 : 0;
    const PageId left = pn.child(sep_idx);
    const PageId right = pn.child(sep_idx + 1);
    const Node ln{arena_->Read(left)};
    const Node rn{arena_->Read(right)};
    const bool leaf = ln.leaf();
    const std::string_view sep = pn.key(sep_idx);
    std::uint32_t merged = ln.used(ps) + rn.used(ps) - kHeader;
    if (!leaf) merged += kCellHeader + static_cast<std::uint32_t>(sep.size()) + kSlot;
    if (merged > ps) continue;

    s.page_a.resize(ps);
    s.page_b.resize(ps);
    std::memcpy(s.page_a.data(), ln.p, ps);
    std::memcpy(s.page_b.data(), rn.p, ps);
    const Node lc{s.page_a.data()};
    const Node rc{s.page_b.data()};
    s.cells.clear();
    for (std::uint32_t i = 0; i < lc.count(); ++i) s.cells.push_back({lc.cell(i), lc.cell_size(i)});
    if (!leaf) {
      // The separator comes down, pointing at the left node's right child.
      CellParts down{sep, lc.right(), {}, false, kNoPage};
      s.cell.resize(down.size());
      down.WriteTo(s.cell.data());
      s.cells.push_back({s.cell.data(), down.size()});
    }
    for (std::uint32_t i = 0; i < rc.count(); ++i) s.cells.push_back({rc.cell(i), rc.cell_size(i)});
    BuildNode(arena_->Write(left), leaf ? kLeaf : kInternal, ps, leaf ? kNoPage : rc.right(),
              s.cells.data(), s.cells.size());
    std::uint8_t* pp = arena_->Write(parent);
    SetChild(pp, sep_idx + 1, left);
    RemoveSlot(pp, sep_idx);
    arena_->Free(right);
  }
  // Shrink from the top: an internal root with no keys hands over to its
  // only child; an empty leaf root leaves an empty tree.
  for (;;) {
    const PageId root = arena_->root();
    if (root == kNoPage) break;
    const Node rn{arena_->Read(root)};
    if (rn.count() != 0) break;
    if (rn.leaf()) {
      arena_->SetTree(kNoPage, 0);
    } else {
      arena_->SetTree(rn.right(), arena_->tree_height() - 1);
    }
    arena_->Free(root);
  }
}

Result<PageId> BTree::WriteOverflow(std::string_view value) {
  const std::uint32_t ps = arena_->page_size();
  const std::uint32_t cap = ps - kHeader;
  PageId head = kNoPage;
  PageId prev = kNoPage;
  std::size_t off = 0;
  while (off < value.size()) {
    KEEPSTATE_ASSIGN_OR_RETURN(const PageId page, arena_->Allocate());
    const std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(cap, value.size() - off));
    std::uint8_t* p = arena_->Write(page);
    p[0] = kOverflow;
    Store<std::uint32_t>(p + 4, n);
    std::memcpy(p + kHeader, value.data() + off, n);
    if (prev == kNoPage) {
      head = page;
    } else {
      Store<std::uint32_t>(arena_->Write(prev) + 12, page);
    }
    prev = page;
    off += n;
  }
  return head;
}

void BTree::FreeOverflow(PageId head) {
  while (head != kNoPage) {
    const PageId next = Load<std::uint32_t>(arena_->Read(head) + 12);
    arena_->Free(head);
    head = next;
  }
}

void BTree::ReadOverflow(PageId head, std::uint32_t size, std::string* out) const {
  out->resize(size);
  std::size_t off = 0;
  while (head != kNoPage && off < size) {
    const std::uint8_t* p = arena_->Read(head);
    const std::uint32_t n = std::min<std::uint32_t>(Load<std::uint32_t>(p + 4), size - static_cast<std::uint32_t>(off));
    std::memcpy(out->data() + off, p + kHeader, n);
    off += n;
    head = Load<std::uint32_t>(p + 12);
  }
}

// ---- Cursor ---------------------------------------------------------------

void Cursor::DescendEdge(bool leftmost) {
  // REQUIRES: the top frame is an internal node with its index set.
  for (;;) {
    const Frame& top = stack_[depth_ - 1];
    const Node n{tree_->arena_->Read(top.page)};
    if (n.leaf()) return;
    const PageId child = n.child(top.index);
    const Node c{tree_->arena_->Read(child)};
    stack_[depth_++] = {child, leftmost ? 0u : c.count()};
  }
}

void Cursor::SeekFirst() {
  depth_ = 0;
  valid_ = false;
  if (tree_->arena_->root() == kNoPage) return;
  stack_[depth_++] = {tree_->arena_->root(), 0};
  DescendEdge(true);
  SettleForward();
}

void Cursor::SeekLast() {
  depth_ = 0;
  valid_ = false;
  const PageId root = tree_->arena_->root();
  if (root == kNoPage) return;
  stack_[depth_++] = {root, Node{tree_->arena_->Read(root)}.count()};
  DescendEdge(false);
  SettleBackward();
}

bool Cursor::DescendTo(std::string_view target) {
  depth_ = 0;
  valid_ = false;
  if (tree_->arena_->root() == kNoPage) return false;
  BTree::Path path;
  tree_->Descend(target, &path);
  for (int i = 0; i < path.height; ++i) stack_[i] = {path.page[i], path.index[i]};
  depth_ = path.height;
  return true;
}

void Cursor::SeekGE(std::string_view target) {
  if (DescendTo(target)) SettleForward();
}

void Cursor::SeekLT(std::string_view target) {
  if (DescendTo(target)) SettleBackward();
}

// Moves to the first entry at or after the current leaf position.
void Cursor::SettleForward() {
  for (;;) {
    const Frame& leaf = stack_[depth_ - 1];
    if (leaf.index < Node{tree_->arena_->Read(leaf.page)}.count()) {
      valid_ = true;
      return;
    }
    int d = depth_ - 2;
    while (d >= 0 && stack_[d].index >= Node{tree_->arena_->Read(stack_[d].page)}.count()) --d;
    if (d < 0) {
      valid_ = false;
      return;
    }
    stack_[d].index++;
    depth_ = d + 1;
    DescendEdge(true);
  }
}

// Moves to the last entry strictly before the current leaf position.
void Cursor::SettleBackward() {
  for (;;) {
    Frame& leaf = stack_[depth_ - 1];
    if (leaf.index > 0) {
      leaf.index--;
      valid_ = true;
      return;
    }
    int d = depth_ - 2;
    while (d >= 0 && stack_[d].index == 0) --d;
    if (d < 0) {
      valid_ = false;
      return;
    }
    stack_[d].index--;
    depth_ = d + 1;
    DescendEdge(false);
  }
}

void Cursor::Next() {
  stack_[depth_ - 1].index++;
  SettleForward();
}

void Cursor::Prev() { SettleBackward(); }

std::string_view Cursor::key() const {
  const Frame& leaf = stack_[depth_ - 1];
  return Node{tree_->arena_->Read(leaf.page)}.key(leaf.index);
}

std::string_view Cursor::value() {
  const Frame& leaf = stack_[depth_ - 1];
  const Node n{tree_->arena_->Read(leaf.page)};
  const std::uint8_t* c = n.cell(leaf.index);
  const std::uint32_t vf = Load<std::uint32_t>(c + 2);
  const std::uint8_t* v = c + kCellHeader + Load<std::uint16_t>(c);
  if (vf & kOverflowBit) {
    tree_->ReadOverflow(Load<std::uint32_t>(v), vf & ~kOverflowBit, &overflow_buffer_);
    return overflow_buffer_;
  }
  return {reinterpret_cast<const char*>(v), vf};
}

void BTree::Scan(const ScanOptions& o,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const {
  Cursor c(*this);
  std::uint64_t n = 0;
  if (!o.reverse) {
    c.SeekGE(o.start);
    for (; c.Valid(); c.Next()) {
      if (o.has_end && CompareKeys(c.key(), o.end) >= 0) break;
      if (o.limit != 0 && n == o.limit) break;
      ++n;
      const std::string_view k = c.key();
      if (!fn(k, c.value())) break;
    }
  } else {
    if (o.has_end) {
      c.SeekLT(o.end);
    } else {
      c.SeekLast();
    }
    for (; c.Valid(); c.Prev()) {
      if (CompareKeys(c.key(), o.start) < 0) break;
      if (o.limit != 0 && n == o.limit) break;
      ++n;
      const std::string_view k = c.key();
      if (!fn(k, c.value())) break;
    }
  }
}

std::uint64_t BTree::CountRange(const ScanOptions& o) const {
  std::uint64_t n = 0;
  Cursor c(*this);
  for (c.SeekGE(o.start); c.Valid(); c.Next()) {
    if (o.has_end && CompareKeys(c.key(), o.end) >= 0) break;
    ++n;
  }
  return n;
}

// ---- Check ----------------------------------------------------------------

namespace {

struct Checker {
  const Arena& arena;
  std::vector<std::uint8_t> seen;
  std::uint64_t entries = 0;

  Status Fail(PageId page, const std::string& what) {
    return Status::Corruption("b+tree page " + std::to_string(page) + ": " + what);
  }

  Status Claim(PageId page, const char* role) {
    if (page == kNoPage || page >= arena.page_count()) {
      return Status::Corruption(std::string(role) + " reference to page " + std::to_string(page) +
                                " out of range");
    }
    if (seen[page]) return Fail(page, std::string("referenced twice (as ") + role + ")");
    seen[page] = 1;
    return Status::Ok();
  }

  Status CheckOverflow(PageId head, std::uint32_t size) {
    const std::uint32_t cap = arena.page_size() - kHeader;
    std::uint64_t total = 0;
    PageId page = head;
    while (page != kNoPage) {
      KEEPSTATE_RETURN_IF_ERROR(Claim(page, "overflow"));
      const std::uint8_t* p = arena.Read(page);
      if (p[0] != kOverflow) return Fail(page, "expected an overflow page");
      const std::uint32_t used = Load<std::uint32_t>(p + 4);
      if (used == 0 || used > cap) return Fail(page, "overflow page length out of range");
      total += used;
      page = Load<std::uint32_t>(p + 12);
    }
    if (total != size) return Fail(head, "overflow chain length differs from the value length");
    return Status::Ok();
  }

  // lo inclusive (empty: none), hi exclusive (has_hi false: none).
  Status CheckNode(PageId page, std::uint32_t depth, std::uint32_t height, std::string_view lo,
                   bool has_lo, std::string_view hi, bool has_hi) {
    KEEPSTATE_RETURN_IF_ERROR(Claim(page, "tree"));
    const std::uint32_t ps = arena.page_size();
    const Node n{arena.Read(page)};
    const bool leaf_expected = depth + 1 == height;
    if (n.type() != (leaf_expected ? kLeaf : kInternal)) return Fail(page, "wrong node type for its depth");
    if (n.heap() > ps || n.heap() < kHeader + kSlot * n.count()) return Fail(page, "heap out of range");
    std::uint64_t live = 0;
    for (std::uint32_t i = 0; i < n.count(); ++i) {
      const std::uint32_t off = n.slot(i);
      if (off < n.heap() || off + kCellHeader > ps) return Fail(page, "slot outside the cell heap");
      const std::uint32_t klen = Load<std::uint16_t>(n.p + off);
      if (klen == 0 || klen > kMaxKeySize) return Fail(page, "key length out of range");
      if (off + n.cell_size(i) > ps) return Fail(page, "cell runs past the page end");
      live += n.cell_size(i);
      const std::string_view k = n.key(i);
      const std::uint32_t plen = n.prefix_len();
      if (plen > k.size() || k.substr(0, plen) != n.key(0).substr(0, plen)) {
        return Fail(page, "key does not start with the node's prefix");
      }
      if (n.head(i) != Head(k, plen)) return Fail(page, "slot head does not match its key");
      if (i > 0 && CompareKeys(n.key(i - 1), k) >= 0) return Fail(page, "keys out of order");
      if (has_lo && CompareKeys(k, lo) < 0) return Fail(page, "key below the parent's bound");
      if (has_hi && CompareKeys(k, hi) >= 0) return Fail(page, "key above the parent's bound");
    }
    if (live + n.frag() != ps - n.heap()) return Fail(page, "fragment count does not add up");
    if (n.leaf()) {
      entries += n.count();
      for (std::uint32_t i = 0; i < n.count(); ++i) {
        const std::uint32_t vf = n.field(i);
        if (vf & kOverflowBit) {
          const PageId head = Load<std::uint32_t>(n.cell(i) + kCellHeader + n.key(i).size());
          KEEPSTATE_RETURN_IF_ERROR(CheckOverflow(head, vf & ~kOverflowBit));
        }
      }
      return Status::Ok();
    }
    for (std::uint32_t i = 0; i <= n.count(); ++i) {
      const bool child_has_lo = i > 0 ? true : has_lo;
      const std::string_view child_lo = i > 0 ? n.key(i - 1) : lo;
      const bool child_has_hi = i < n.count() ? true : has_hi;
      const std::string_view child_hi = i < n.count() ? n.key(i) : hi;
      KEEPSTATE_RETURN_IF_ERROR(
          CheckNode(n.child(i), depth + 1, height, child_lo, child_has_lo, child_hi, child_has_hi));
    }
    return Status::Ok();
  }
};

}  // namespace

Status BTree::Check() const {
  Checker ck{*arena_, std::vector<std::uint8_t>(arena_->page_count(), 0)};
  ck.seen[0] = 1;
  const Superblock sb = arena_->superblock();
  if (sb.root != kNoPage) {
    if (sb.tree_height == 0 || sb.tree_height > kMaxHeight) {
      return Status::Corruption("tree height out of range");
    }
    KEEPSTATE_RETURN_IF_ERROR(ck.CheckNode(sb.root, 0, sb.tree_height, {}, false, {}, false));
  } else if (sb.tree_height != 0) {
    return Status::Corruption("empty tree with non-zero height");
  }
  if (ck.entries != sb.entry_count) {
    return Status::Corruption("superblock counts " + std::to_string(sb.entry_count) +
                              " entries, the tree holds " + std::to_string(ck.entries));
  }
  for (PageId id : arena_->FreePages()) KEEPSTATE_RETURN_IF_ERROR(ck.Claim(id, "free list"));
  for (PageId id = 1; id < arena_->page_count(); ++id) {
    if (!ck.seen[id]) return Status::Corruption("page " + std::to_string(id) + " is leaked");
  }
  return Status::Ok();
}

}  // namespace keepstate::engine
