// Changes: which keys a store's writes touched, and the exact difference
// between two states of one store — what `watch` reports (js-bindings).
//
// Local writes are recorded as they land (Store::RecordChanges turns it on;
// off, a write costs nothing extra): the keys in write order, repeats
// included, until TakeChangedKeys. The caller reads the keys' values then,
// so what it reports is the state at that moment (coalesced).
//
// A catch-up to another writer's commit replaces many pages at once; there
// DiffStates compares the state before with the state after. Its cost
// follows the pages that changed, not the state's size: a key whose value
// differs must sit in a leaf whose bytes differ (the leaf holding it after,
// for an insert or update; the one holding it before, for a delete), because
// every page is reachable exactly once (BTree's invariant), so the keys of
// the leaves on changed pages, before and after, are the only candidates;
// each is then looked up in both states. An overflow page among the changed
// ones can change a value without changing its leaf (a chain rewritten onto
// the same pages), so then the two trees are compared in full.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/engine/arena.h"

namespace keepstate::engine {

class Store;

// A range of keys a watcher wants: [start, end), or [start, ∞) without an end.
struct KeyRange {
  std::string start;
  std::string end;
  bool has_end = false;
  bool Contains(std::string_view key) const;
};

// Keys written, back to back (u32 length, then the bytes), in write order;
// only those in one of the watched ranges, so a write nobody watches costs a
// range check.
class ChangeLog {
 public:
  bool enabled() const { return !ranges_.empty(); }
  // The ranges to record (empty: recording off, and what was recorded is
  // dropped). They are kept as their union: disjoint, ascending, so a write
  // is checked with one binary search however many watchers there are.
  void Watch(std::vector<KeyRange> ranges);
  void Record(std::string_view key) {
    if (ranges_.empty() || !Watched(key)) return;
    const std::uint32_t n = static_cast<std::uint32_t>(key.size());
    const std::size_t at = bytes_.size();
    bytes_.resize(at + 4 + n);
    __builtin_memcpy(bytes_.data() + at, &n, 4);
    __builtin_memcpy(bytes_.data() + at + 4, key.data(), n);
  }
  bool empty() const { return bytes_.empty(); }
  // A position to Truncate back to (writes that were rolled back).
  std::size_t mark() const { return bytes_.size(); }
  void Truncate(std::size_t mark) { bytes_.resize(std::min(mark, bytes_.size())); }
  void Clear() { bytes_.clear(); }
  // Calls fn(key) for each recorded write, in order.
  void ForEach(const std::function<void(std::string_view)>& fn) const;
  // Whether `key` is in a watched range, and the ranges (their union).
  bool Watched(std::string_view key) const;
  const std::vector<KeyRange>& ranges() const { return ranges_; }

 private:
  std::vector<KeyRange> ranges_;
  // Bit b: some watched key can start with byte b (a write nobody watches
  // is mostly turned away by its first byte).
  std::uint64_t first_bytes_[4] = {};
  std::vector<char> bytes_;
};

// Pages whose bytes differ between two arenas of one store, ascending; a page
// that exists in only one of them counts as differing.
std::vector<PageId> DifferingPages(const Arena& a, const Arena& b);

// Calls fn(key, value) once for every key whose value differs between
// `before` and `after`, in key order: value is after's (nullopt: deleted).
// `pages` must include every page whose bytes differ (more is allowed).
void DiffStates(const Store& before, const Store& after, std::span<const PageId> pages,
                const std::function<void(std::string_view, std::optional<std::string_view>)>& fn);

// The changes of a catch-up in place (Arena::ApplyPages), for the keys in
// the watched ranges of `watching`: the state before is gone once the pages
// are applied, so Prepare collects the candidates first — the keys of the
// leaves on the pages that change, in the state before and in the new pages'
// bytes — with their values before; Finish looks them up in the state after.
// Exact by the argument of DiffStates; if an overflow page is among them,
// every watched key is compared instead (their values before are scanned).
class InPlaceDiff {
 public:
  // `pages` (ascending) get the bytes at `bytes` (page_size each); the pages
  // of `before` at or above `new_count` disappear.
  static InPlaceDiff Prepare(const Store& before, const ChangeLog& watching, std::uint32_t new_count,
                             std::span<const PageId> pages, const std::uint8_t* bytes);
  // Calls fn(key, value after; nullopt: gone) for each watched key that changed, in key order.
  void Finish(const Store& after, const ChangeLog& watching,
              const std::function<void(std::string_view, std::optional<std::string_view>)>& fn) const;

 private:
  bool full_ = false;
  std::vector<std::pair<std::string, std::optional<std::string>>> before_;  // sorted by key
};

}  // namespace keepstate::engine
