// Arena: the page-granular memory that holds a store's whole state.
//
// The arena is one contiguous buffer of `page_count` pages of `page_size`
// bytes (a power of two, 4 KiB to 64 KiB, fixed per store). Inside it every
// reference is a page number or an offset, never a pointer, so its bytes are
// position independent: a snapshot is the pages' bytes and a restore is a copy
// back. The buffer may move when the arena grows, so callers must not keep
// page pointers across a call that can allocate.
//
// Page 0 is the superblock (see Superblock below and docs/engine.md).
// Freed pages form a singly linked free list threaded through the pages
// themselves, and are reused before the arena grows.
//
// Dirty tracking: one bit per page. The only way to get a mutable pointer
// into the arena is Write(), which sets the page's bit, so a write that
// bypasses dirty tracking cannot be expressed through this API.
//
// Thread safety: none. An arena belongs to one store, used by one fiber
// scheduler on one thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "keepstate/engine/page_buffer.h"
#include "keepstate/status.h"

namespace keepstate::engine {

// A page number. Page 0 is the superblock, so 0 also means "no page" in
// every page reference (tree children, free list, overflow chains).
using PageId = std::uint32_t;
inline constexpr PageId kNoPage = 0;

inline constexpr std::uint32_t kMinPageSize = 4096;
inline constexpr std::uint32_t kMaxPageSize = 65536;
// Chosen by bench/engine (page-size sweep); docs/engine.md explains why.
inline constexpr std::uint32_t kDefaultPageSize = 4096;

inline constexpr std::uint64_t kArenaMagic = 0x414E4552'4154534BULL;  // "KSTATERA" LE
inline constexpr std::uint32_t kArenaFormatVersion = 1;

// The superblock, stored little-endian at offset 0 of page 0. Mirrored by
// docs/engine.md; the static_asserts pin the layout.
struct Superblock {
  std::uint64_t magic;           // kArenaMagic
  std::uint32_t format_version;  // kArenaFormatVersion
  std::uint32_t page_size;       // bytes per page
  std::uint32_t page_count;      // pages in the arena, superblock included
  PageId root;                   // B+tree root page, kNoPage when empty
  PageId free_head;              // first free page, kNoPage when none
  std::uint32_t free_count;      // pages on the free list
  std::uint64_t entry_count;     // keys in the B+tree
  std::uint64_t user_version;    // the application's schema version
  std::uint32_t tree_height;     // levels in the B+tree, 0 when empty
  std::uint32_t reserved;        // zero
};
static_assert(sizeof(Superblock) == 56, "superblock layout is part of the format");
static_assert(offsetof(Superblock, root) == 20);
static_assert(offsetof(Superblock, entry_count) == 32);

// One bit per page. Its memory is allocated with a checked malloc, so that
// growing it can fail as a Status (the arena grows it with its pages) rather
// than abort in operator new (-fno-exceptions).
class DirtySet {
 public:
  DirtySet() = default;
  DirtySet(DirtySet&&) noexcept = default;
  DirtySet& operator=(DirtySet&&) noexcept = default;

  // Bits for `pages` pages; new bits are clear. False, and no change, if
  // memory is exhausted.
  [[nodiscard]] bool Resize(std::uint32_t pages);
  void Set(PageId id) { bits_[id >> 6] |= std::uint64_t{1} << (id & 63); }
  void Clear(PageId id) { bits_[id >> 6] &= ~(std::uint64_t{1} << (id & 63)); }
  bool Test(PageId id) const { return (bits_[id >> 6] >> (id & 63)) & 1; }
  void ClearAll() { std::fill(bits_.get(), bits_.get() + words_, 0); }
  std::uint32_t Count() const;
  // Dirty pages in ascending order.
  std::vector<PageId> List() const;

 private:
  struct FreeWords {
    void operator()(std::uint64_t* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint64_t[], FreeWords> bits_;
  std::size_t words_ = 0;     // in use
  std::size_t capacity_ = 0;  // allocated
};

class Arena {
 public:
  class PendingRestore;  // see BeginRestore

  // A new arena holding only its superblock. InvalidArgument unless
  // page_size is a power of two in [kMinPageSize, kMaxPageSize].
  static Result<Arena> Create(std::uint32_t page_size = kDefaultPageSize);

  // Rebuilds an arena from the images of all its pages, laid out
  // contiguously (page i at i * page_size). Validates the superblock: magic,
  // format version, page size (must equal `expected_page_size`), page count
  // (must match the image), root and free list within range. Returns
  // Corruption naming the field on mismatch, Unsupported for a newer format.
  // All pages of the result are clean.
  static Result<Arena> FromImage(std::vector<std::uint8_t> image,
                                 std::uint32_t expected_page_size);
  // The same without an intermediate image, for pages that arrive over time
  // (a restore fed pack by pack from asynchronous storage, verifying each
  // page as it copies it): BeginRestore allocates the buffer; the caller
  // writes all page_count pages through image(); then Finish validates the
  // superblock as FromImage does and returns the arena.
  // A PendingRestore is not an Arena: nothing can use the bytes before they
  // are validated, and writing image() never bypasses a live arena's dirty
  // tracking.
  // With reserve_pages (0: all), memory for only that many pages is taken
  // now; PendingRestore::EnsurePages takes more as pages arrive (a snapshot
  // file of unknown size: memory follows the bytes that came, not the claim).
  static Result<PendingRestore> BeginRestore(std::uint32_t page_size, std::uint32_t page_count,
                                             std::uint32_t reserve_pages = 0);

  Arena(Arena&&) noexcept = default;
  Arena& operator=(Arena&&) noexcept = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  std::uint32_t page_size() const { return page_size_; }
  std::uint32_t page_shift() const { return page_shift_; }
  std::uint32_t page_count() const { return page_count_; }
  std::size_t size_bytes() const { return std::size_t{page_count_} << page_shift_; }
  // Pages the buffer has room for before the arena must grow (a copy).
  std::uint32_t capacity_pages() const { return capacity_pages_; }

  // Read-only view of a page. REQUIRES: id < page_count().
  const std::uint8_t* Read(PageId id) const {
    return buffer_.get() + (std::size_t{id} << page_shift_);
  }
  // Mutable view of a page; marks it dirty. REQUIRES: id < page_count().
  std::uint8_t* Write(PageId id) {
    if (journal_active_) [[unlikely]] JournalPage(id);
    dirty_.Set(id);
    return buffer_.get() + (std::size_t{id} << page_shift_);
  }
  // All pages, contiguous and read-only (for capture and comparisons).
  std::span<const std::uint8_t> bytes() const { return {buffer_.get(), size_bytes()}; }

  // A zeroed, dirty page: from the free list, else appended. OutOfSpace if
  // memory cannot grow. Never fails after Reserve(n) for the next n calls.
  Result<PageId> Allocate();
  // Returns a page to the free list. REQUIRES: 0 < id < page_count(), id is
  // not already free.
  void Free(PageId id);
  // Ensures the next `pages` Allocate() calls cannot fail.
  Status Reserve(std::uint32_t pages);
  // Returns free pages at the end of the arena: while the free list's first
  // page is the last page, takes it off the list and lowers the page count
  // (the order Free() leaves a freed chain in: its last page first). O(pages
  // returned); free pages elsewhere stay listed. Returns how many.
  // REQUIRES: no journal active.
  std::uint32_t TrimFreeTail();
  // Lowers the page count to `page_count` and empties the free list.
  // REQUIRES: no journal active, and the free list holds exactly the pages
  // at or above `page_count` (a caller that moved every live page below it:
  // BTree::Shrink).
  void DropFreePagesAbove(std::uint32_t page_count);
  // Caps the page count (0: no cap, the default): growth past it is
  // OutOfSpace, as when linear memory cannot grow. For memory budgets and
  // for testing the out-of-memory paths.
  void SetPageLimit(std::uint32_t pages) { page_limit_ = pages; }

  // Makes the arena hold another verified state of the same store in place:
  // `page_count` pages, the listed `pages` (ascending) replaced by the bytes
  // at `bytes` (back to back, page_size each), every other page below the
  // new count kept as it is; all pages clean afterwards. The state it makes
  // is validated first (its superblock, as FromImage checks it), and on an
  // error nothing changes. An in-place catch-up with another writer's commit
  // (RestoreBase::stage_only): the kept pages hold exactly the bytes that
  // version has, the caller's responsibility. REQUIRES: no journal active.
  // Errors: Corruption (the superblock it would make), InvalidArgument
  // (pages out of order or out of range), OutOfSpace (growth).
  Status ApplyPages(std::uint32_t page_count, std::span<const PageId> pages, const std::uint8_t* bytes);

  // Superblock fields.
  Superblock superblock() const;
  // Single fields, read in place: every lookup reads root and height.
  PageId root() const { return Field<PageId>(offsetof(Superblock, root)); }
  std::uint32_t tree_height() const { return Field<std::uint32_t>(offsetof(Superblock, tree_height)); }
  std::uint64_t entry_count() const { return Field<std::uint64_t>(offsetof(Superblock, entry_count)); }
  std::uint32_t free_count() const { return Field<std::uint32_t>(offsetof(Superblock, free_count)); }
  std::uint64_t user_version() const { return Field<std::uint64_t>(offsetof(Superblock, user_version)); }
  void SetTree(PageId root, std::uint32_t height);
  void AddEntries(std::int64_t delta);
  void SetUserVersion(std::uint64_t v);

  // Journal: makes a group of writes undoable, so a multi-step change that
  // fails half way (out of memory) can be rolled back to the exact bytes,
  // page count and dirty bits it started from. While active, the first
  // Write() of each pre-existing page saves its image.
  void BeginJournal();
  void CommitJournal();    // keep the changes, drop the saved images
  void RollbackJournal();  // restore every page, the page count and dirty bits
  bool journal_active() const { return journal_active_; }

  // Pages on the free list, in list order (for invariant checks).
  std::vector<PageId> FreePages() const;

  // Dirty tracking.
  const DirtySet& dirty() const { return dirty_; }
  std::vector<PageId> DirtyPages() const { return dirty_.List(); }
  void ClearDirty(std::span<const PageId> pages);
  void MarkDirty(std::span<const PageId> pages);
  void ClearAllDirty() { dirty_.ClearAll(); }

 private:
  Arena(std::uint32_t page_size, std::uint32_t page_count);
  template <typename T>
  T Field(std::size_t offset) const {
    T v;
    __builtin_memcpy(&v, buffer_.get() + offset, sizeof v);
    return v;
  }
  Status Grow(std::uint32_t min_pages);
  // Checks the superblock against the arena's page size and count (see
  // FromImage).
  Status ValidateRestored();
  // Those checks for the superblock `sb` of a state of `page_count` pages
  // whose page bytes `page(id)` gives (the free list is walked through it).
  Status ValidateState(const Superblock& sb, std::uint32_t page_count,
                       const std::function<const std::uint8_t*(PageId)>& page) const;
  void StoreSuperblock(const Superblock& sb);
  void JournalPage(PageId id);

  struct JournalEntry {
    PageId id;
    bool was_dirty;
    std::size_t offset;  // of the page image in journal_bytes_
  };

  std::uint32_t page_size_ = 0;
  std::uint32_t page_shift_ = 0;
  std::uint32_t page_count_ = 0;
  std::uint32_t capacity_pages_ = 0;
  std::uint32_t page_limit_ = 0;
  PageBuffer buffer_;
  DirtySet dirty_;

  bool journal_active_ = false;
  std::uint32_t journal_page_count_ = 0;  // page_count_ at BeginJournal()
  DirtySet journaled_;                    // pages whose image is saved
  std::vector<JournalEntry> journal_;
  std::vector<std::uint8_t> journal_bytes_;
};

class Arena::PendingRestore {
 public:
  // The page images, page i at i * page_size. REQUIRES: only the first
  // capacity_pages() of them are written (all, unless BeginRestore reserved fewer).
  std::span<std::uint8_t> image() { return {arena_.buffer_.get(), arena_.size_bytes()}; }
  std::uint32_t capacity_pages() const { return arena_.capacity_pages_; }
  // Room for the first `pages` page images (at most the page count), keeping
  // those written; OutOfSpace leaves everything as it was. image() moves.
  Status EnsurePages(std::uint32_t pages);
  // Validates (Corruption/Unsupported as FromImage); all pages clean.
  Result<Arena> Finish() &&;

 private:
  friend class Arena;
  explicit PendingRestore(Arena arena) : arena_(std::move(arena)) {}
  Arena arena_;
};

}  // namespace keepstate::engine
