// Cursor and scans: ordered iteration over the tree in either direction,
// Scan and CountRange over a key range, and PrefixScan's bounds.
//
// A cursor is a stack of (page, index) frames from the root to a leaf; the
// leaf frame's index is the current entry.
// Invariant: while Valid(), the leaf frame's index is below that leaf's
// count, and each internal frame's index names the child in the frame below
// it. Any write to the tree invalidates a cursor (pages and slots move), so
// Scan's callback must not write.
#include <string>
#include <string_view>

#include "btree_node.h"
#include "keepstate/engine/btree.h"

namespace keepstate::engine {

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

}  // namespace keepstate::engine
