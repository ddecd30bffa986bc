// Recorded writes and the difference of two states (changes.h).
#include "keepstate/engine/changes.h"

#include <algorithm>
#include <cstring>

#include "btree_node.h"
#include "keepstate/engine/store.h"

namespace keepstate::engine {

bool KeyRange::Contains(std::string_view key) const {
  return CompareKeys(key, start) >= 0 && (!has_end || CompareKeys(key, end) < 0);
}

bool ChangeLog::Watched(std::string_view key) const {
  for (const KeyRange& r : ranges_) {
    if (r.Contains(key)) return true;
  }
  return false;
}

void ChangeLog::ForEach(const std::function<void(std::string_view)>& fn) const {
  std::size_t at = 0;
  while (at < bytes_.size()) {
    std::uint32_t n;
    __builtin_memcpy(&n, bytes_.data() + at, 4);
    fn({bytes_.data() + at + 4, n});
    at += 4 + n;
  }
}

std::vector<PageId> DifferingPages(const Arena& a, const Arena& b) {
  std::vector<PageId> pages;
  const std::uint32_t common = std::min(a.page_count(), b.page_count());
  const std::uint32_t size = a.page_size();
  for (PageId id = 0; id < common; ++id) {
    if (std::memcmp(a.Read(id), b.Read(id), size) != 0) pages.push_back(id);
  }
  for (PageId id = common; id < std::max(a.page_count(), b.page_count()); ++id) pages.push_back(id);
  return pages;
}

namespace {

using DiffFn = std::function<void(std::string_view, std::optional<std::string_view>)>;

// Both trees in key order, side by side.
void DiffInFull(const Store& before, const Store& after, const DiffFn& fn) {
  Cursor b(before.tree()), a(after.tree());
  b.SeekFirst();
  a.SeekFirst();
  while (b.Valid() || a.Valid()) {
    const int c = !b.Valid() ? 1 : !a.Valid() ? -1 : CompareKeys(b.key(), a.key());
    if (c < 0) {
      fn(b.key(), std::nullopt);
      b.Next();
    } else if (c > 0) {
      fn(a.key(), a.value());
      a.Next();
    } else {
      const std::string_view value = a.value();
      // b.value() may reuse its overflow buffer; a's value is already read.
      if (b.value() != value) fn(a.key(), value);
      b.Next();
      a.Next();
    }
  }
}

// Adds the keys of the leaf on page `id` of `arena`, if it is one; false if it is an overflow page.
bool AddLeafKeys(const Arena& arena, PageId id, std::vector<std::string>* keys) {
  if (id == kNoPage || id >= arena.page_count()) return true;
  const Node n{arena.Read(id)};
  if (n.type() == kOverflow) return false;
  if (!n.leaf()) return true;
  // A free page may keep a stale leaf's bytes; its keys are looked up like
  // any other, so they only cost the lookup. Bounds are checked so that
  // stale bytes never read outside the page.
  const std::uint32_t size = arena.page_size();
  const std::uint32_t count = std::min<std::uint32_t>(n.count(), (size - kHeader) / kSlot);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint32_t slot = n.slot(i);
    if (slot + kCellHeader > size) continue;
    const std::uint32_t klen = Load<std::uint16_t>(n.cell(i));
    if (klen == 0 || slot + kCellHeader + klen > size) continue;
    keys->emplace_back(n.key(i));
  }
  return true;
}

}  // namespace

void DiffStates(const Store& before, const Store& after, std::span<const PageId> pages, const DiffFn& fn) {
  std::vector<std::string> keys;
  for (PageId id : pages) {
    if (!AddLeafKeys(before.arena(), id, &keys) || !AddLeafKeys(after.arena(), id, &keys)) {
      DiffInFull(before, after, fn);
      return;
    }
  }
  std::sort(keys.begin(), keys.end(), [](const std::string& x, const std::string& y) { return CompareKeys(x, y) < 0; });
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::string was, now;
  for (const std::string& key : keys) {
    const bool had = before.tree().Get(key, &was).ok();
    const bool has = after.tree().Get(key, &now).ok();
    if (has ? !had || was != now : had) fn(key, has ? std::optional<std::string_view>(now) : std::nullopt);
  }
}

}  // namespace keepstate::engine
