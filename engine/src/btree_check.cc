// BTree::Check, the structural verifier: walks the tree from the root and
// returns Corruption naming the first broken invariant of those listed in
// btree.h (depth of the leaves, key order within a node and against the
// parent's separators, every page reachable exactly once, the entry count)
// and in btree_node.h (node types, heap, slot and cell bounds, prefix and
// heads, fragment count), and checks each overflow chain's length.
//
// Its input may be bytes restored from storage (Store::FromArena with
// verify): it range-checks every page reference before it reads the page
// and every cell offset before it reads the cell, and reports what it finds
// as a Status.
#include <string>
#include <vector>

#include "btree_node.h"
#include "keepstate/engine/btree.h"

namespace keepstate::engine {

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
