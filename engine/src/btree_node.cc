// The node writers declared in btree_node.h: insert and remove a cell,
// compact, build a node from sorted cells. Each keeps the node invariants
// listed there (prefix and heads, heap and frag accounting); the tree
// operations in btree.cc decide which node changes and how.
#include "btree_node.h"

#include <cstring>
#include <vector>

namespace keepstate::engine {
namespace {

void SetCount(std::uint8_t* p, std::uint32_t n) { Save<std::uint16_t>(p + 2, static_cast<std::uint16_t>(n)); }
void SetHeap(std::uint8_t* p, std::uint32_t h) { Save<std::uint32_t>(p + 4, h); }
void SetFrag(std::uint8_t* p, std::uint32_t f) { Save<std::uint32_t>(p + 8, f); }
void SetPrefixLen(std::uint8_t* p, std::uint32_t n) { Save<std::uint16_t>(p + 16, static_cast<std::uint16_t>(n)); }
void SetSlot(std::uint8_t* p, std::uint32_t i, std::uint32_t head, std::uint32_t off) {
  std::uint8_t* s = p + kHeader + kSlot * i;
  Save<std::uint32_t>(s, head);
  Save<std::uint16_t>(s + 4, static_cast<std::uint16_t>(off));
  Save<std::uint16_t>(s + 6, 0);
}

std::size_t CommonPrefix(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Sets the node's prefix to `plen` bytes and recomputes every head.
// REQUIRES: every key of the node shares its first plen bytes.
void SetPrefix(std::uint8_t* p, std::uint32_t plen) {
  SetPrefixLen(p, plen);
  Node n{p};
  for (std::uint32_t i = 0; i < n.count(); ++i) SetSlot(p, i, Head(n.key(i), plen), n.slot(i));
}

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

}  // namespace

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

}  // namespace keepstate::engine
