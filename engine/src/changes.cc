// Recorded writes and the difference of two states (changes.h).
#include "keepstate/engine/changes.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "btree_node.h"
#include "keepstate/engine/store.h"

namespace keepstate::engine {

bool KeyRange::Contains(std::string_view key) const {
  return CompareKeys(key, start) >= 0 && (!has_end || CompareKeys(key, end) < 0);
}

void ChangeLog::Watch(std::vector<KeyRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const KeyRange& a, const KeyRange& b) { return CompareKeys(a.start, b.start) < 0; });
  ranges_.clear();
  for (KeyRange& r : ranges) {
    if (r.has_end && CompareKeys(r.end, r.start) <= 0) continue;  // empty
    if (!ranges_.empty()) {
      KeyRange& last = ranges_.back();
      // Overlapping or touching the one before (starts are ascending): one range.
      if (!last.has_end || CompareKeys(r.start, last.end) <= 0) {
        if (last.has_end && (!r.has_end || CompareKeys(r.end, last.end) > 0)) {
          last.end = std::move(r.end);
          last.has_end = r.has_end;
        }
        continue;
      }
    }
    ranges_.push_back(std::move(r));
  }
  std::fill(std::begin(first_bytes_), std::end(first_bytes_), 0);
  for (const KeyRange& r : ranges_) {
    // Keys in [start, end) start with a byte from start's first (0 for "") to end's first.
    const unsigned lo = r.start.empty() ? 0 : static_cast<unsigned char>(r.start[0]);
    const unsigned hi = !r.has_end || r.end.empty() ? 255 : static_cast<unsigned char>(r.end[0]);
    for (unsigned b = lo; b <= hi; ++b) first_bytes_[b >> 6] |= std::uint64_t{1} << (b & 63);
  }
  if (ranges_.empty()) Clear();
}

bool ChangeLog::Watched(std::string_view key) const {
  if (!key.empty()) {
    const unsigned b = static_cast<unsigned char>(key[0]);
    if (!(first_bytes_[b >> 6] >> (b & 63) & 1)) return false;
  }
  // The last range starting at or before key is the only one that can hold it.
  auto after = std::upper_bound(ranges_.begin(), ranges_.end(), key, [](std::string_view k, const KeyRange& r) {
    return CompareKeys(k, r.start) < 0;
  });
  return after != ranges_.begin() && std::prev(after)->Contains(key);
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

// Adds the keys of the leaf in `page` (page_size bytes), if it is one; false if it is an overflow page.
bool AddLeafKeys(const std::uint8_t* page, std::uint32_t size, std::vector<std::string>* keys) {
  const Node n{page};
  if (n.type() == kOverflow) return false;
  if (!n.leaf()) return true;
  // A free page may keep a stale leaf's bytes; its keys are looked up like
  // any other, so they only cost the lookup. Bounds are checked so that
  // stale bytes never read outside the page.
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

bool AddLeafKeys(const Arena& arena, PageId id, std::vector<std::string>* keys) {
  if (id == kNoPage || id >= arena.page_count()) return true;
  return AddLeafKeys(arena.Read(id), arena.page_size(), keys);
}

void SortUnique(std::vector<std::string>* keys) {
  std::sort(keys->begin(), keys->end(), [](const std::string& x, const std::string& y) { return CompareKeys(x, y) < 0; });
  keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
}

// Every entry of `store` in the watched ranges, in key order, each once.
std::vector<std::pair<std::string, std::optional<std::string>>> WatchedEntries(const Store& store, const ChangeLog& watching) {
  struct KeyOrder {
    bool operator()(const std::string& x, const std::string& y) const { return CompareKeys(x, y) < 0; }
  };
  std::map<std::string, std::string, KeyOrder> found;
  for (const KeyRange& r : watching.ranges()) {
    ScanOptions o;
    o.start = r.start;
    o.end = r.end;
    o.has_end = r.has_end;
    store.tree().Scan(o, [&](std::string_view k, std::string_view v) {
      found.emplace(std::string(k), std::string(v));
      return true;
    });
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (auto& [k, v] : found) out.emplace_back(k, std::move(v));
  return out;
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
  SortUnique(&keys);
  std::string was, now;
  for (const std::string& key : keys) {
    const bool had = before.tree().Get(key, &was).ok();
    const bool has = after.tree().Get(key, &now).ok();
    if (has ? !had || was != now : had) fn(key, has ? std::optional<std::string_view>(now) : std::nullopt);
  }
}

InPlaceDiff InPlaceDiff::Prepare(const Store& before, const ChangeLog& watching, std::uint32_t new_count,
                                 std::span<const PageId> pages, const std::uint8_t* bytes) {
  InPlaceDiff d;
  if (!watching.enabled()) return d;
  const Arena& arena = before.arena();
  std::vector<std::string> keys;
  bool ok = true;
  for (std::size_t i = 0; ok && i < pages.size(); ++i) {
    ok = AddLeafKeys(arena, pages[i], &keys) && AddLeafKeys(bytes + i * arena.page_size(), arena.page_size(), &keys);
  }
  for (PageId id = new_count; ok && id < arena.page_count(); ++id) ok = AddLeafKeys(arena, id, &keys);
  if (!ok) {
    d.full_ = true;
    d.before_ = WatchedEntries(before, watching);
    return d;
  }
  keys.erase(std::remove_if(keys.begin(), keys.end(), [&](const std::string& k) { return !watching.Watched(k); }), keys.end());
  SortUnique(&keys);
  std::string value;
  for (std::string& k : keys) {
    const bool had = before.tree().Get(k, &value).ok();
    d.before_.emplace_back(std::move(k), had ? std::optional<std::string>(value) : std::nullopt);
  }
  return d;
}

void InPlaceDiff::Finish(const Store& after, const ChangeLog& watching,
                         const std::function<void(std::string_view, std::optional<std::string_view>)>& fn) const {
  if (full_) {
    // Both sides in key order, every watched key.
    const auto now = WatchedEntries(after, watching);
    std::size_t i = 0, j = 0;
    while (i < before_.size() || j < now.size()) {
      const int c = i == before_.size() ? 1 : j == now.size() ? -1 : CompareKeys(before_[i].first, now[j].first);
      if (c < 0) {
        fn(before_[i++].first, std::nullopt);
      } else if (c > 0) {
        fn(now[j].first, *now[j].second);
        ++j;
      } else {
        if (before_[i].second != now[j].second) fn(now[j].first, *now[j].second);
        ++i;
        ++j;
      }
    }
    return;
  }
  std::string value;
  for (const auto& [k, was] : before_) {
    const bool has = after.tree().Get(k, &value).ok();
    if (has ? !was || *was != value : was.has_value()) fn(k, has ? std::optional<std::string_view>(value) : std::nullopt);
  }
}

}  // namespace keepstate::engine
