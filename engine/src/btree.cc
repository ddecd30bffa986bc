// B+tree operations on the nodes of btree_node.h: lookups (one key, or a
// batch descending in lockstep), insert with a split or a share with a
// sibling, delete with a merge, and the overflow chains of large values. The
// cursor and scans are in btree_cursor.cc, the checker in btree_check.cc.
//
// Invariants kept by every operation (besides btree.h's, which Check()
// verifies):
//  - A Put happens completely or not at all: it reserves every page it may
//    allocate (PagesNeededForPut) before it modifies anything, so no
//    allocation after that can fail.
//  - structure_version_ is bumped by every change to the tree's shape
//    (insert, delete, split, merge), which invalidates every LeafHint; a
//    same-size value replacement leaves the shape, and the hints, as they
//    were.
//  - Steady-state writes do not allocate heap memory: splits, merges and
//    compaction work in the reused Scratch buffers.
#include "keepstate/engine/btree.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include "btree_node.h"

namespace keepstate::engine {

Status KeySizeError(std::size_t size) {
  if (size == 0) return Status::InvalidArgument("key is empty (keys are 1 to 1024 bytes)");
  return Status::InvalidArgument("key of " + std::to_string(size) +
                                 " bytes exceeds the 1024-byte limit");
}

Status ValueSizeError(std::size_t size) {
  return Status::InvalidArgument("value of " + std::to_string(size) +
                                 " bytes exceeds the 16 MiB limit");
}

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
    Save<std::uint32_t>(p + 4, n);
    std::memcpy(p + kHeader, value.data() + off, n);
    if (prev == kNoPage) {
      head = page;
    } else {
      Save<std::uint32_t>(arena_->Write(prev) + 12, page);
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

std::uint32_t BTree::Shrink() {
  std::uint32_t returned = arena_->TrimFreeTail();
  const std::uint32_t free = arena_->free_count();
  const std::uint32_t live = arena_->page_count() - 1 - free;
  if (free <= live || free < kShrinkMinFreePages) return returned;
  // Pages [1, limit) can hold every live page: the live pages at or above
  // limit move into the free pages below it (as many of one as of the other).
  const PageId limit = live + 1;
  std::vector<PageId> to;
  for (PageId id : arena_->FreePages()) {
    if (id < limit) to.push_back(id);
  }
  std::sort(to.begin(), to.end());
  std::size_t next = 0;
  PageId root = arena_->root();
  if (root != kNoPage) {
    const std::uint32_t height = arena_->tree_height();
    if (root >= limit) {
      std::memcpy(arena_->Write(to[next]), arena_->Read(root), arena_->page_size());
      root = to[next++];
      arena_->SetTree(root, height);
    }
    MoveBelow(root, 0, height, limit, to, &next);
  }
  assert(next == to.size());
  returned += arena_->page_count() - limit;
  arena_->DropFreePagesAbove(limit);
  ++structure_version_;
  return returned;
}

void BTree::MoveBelow(PageId page, std::uint32_t depth, std::uint32_t height, PageId limit,
                      const std::vector<PageId>& to, std::size_t* next) {
  const std::uint32_t ps = arena_->page_size();
  // Moves `id` if it lies at or above limit; the page that refers to it is
  // rewritten by the caller. Never allocates, so page pointers stay valid.
  auto move = [&](PageId id) {
    if (id < limit) return id;
    const PageId dest = to[(*next)++];
    std::memcpy(arena_->Write(dest), arena_->Read(id), ps);
    return dest;
  };
  const Node n{arena_->Read(page)};
  if (depth + 1 == height) {
    for (std::uint32_t i = 0; i < n.count(); ++i) {
      if (!(n.field(i) & kOverflowBit)) continue;
      // The chain's references: the cell's trailing page id, then each page's `next`.
      PageId holder = page;
      std::uint32_t at = static_cast<std::uint32_t>(n.cell(i) + kCellHeader + n.key(i).size() - n.p);
      for (PageId id = Load<std::uint32_t>(arena_->Read(holder) + at); id != kNoPage;) {
        const PageId moved = move(id);
        if (moved != id) Save<std::uint32_t>(arena_->Write(holder) + at, moved);
        holder = moved;
        at = 12;
        id = Load<std::uint32_t>(arena_->Read(holder) + at);
      }
    }
    return;
  }
  for (std::uint32_t i = 0; i <= n.count(); ++i) {
    const PageId child = Node{arena_->Read(page)}.child(i);
    const PageId moved = move(child);
    if (moved != child) SetChild(arena_->Write(page), i, moved);
    MoveBelow(moved, depth + 1, height, limit, to, next);
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

}  // namespace keepstate::engine
