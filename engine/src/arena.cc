// Arena implementation. See arena.h for the model and invariants.
//
// Invariants:
//  - page_count_ == superblock().page_count, capacity_pages_ >= page_count_.
//  - dirty_ and journaled_ have a bit for every page below capacity_pages_
//    (Grow allocates them before it changes anything).
//  - every page on the free list starts with the next free PageId (u32 LE)
//    and is reachable from superblock().free_head exactly once.
#include "keepstate/engine/arena.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <utility>

namespace keepstate::engine {
namespace {

bool ValidPageSize(std::uint32_t s) {
  return s >= kMinPageSize && s <= kMaxPageSize && std::has_single_bit(s);
}

}  // namespace

bool DirtySet::Resize(std::uint32_t pages) {
  const std::size_t words = (std::size_t{pages} + 63) / 64;
  if (words > capacity_) {
    auto* grown = static_cast<std::uint64_t*>(std::malloc(words * sizeof(std::uint64_t)));
    if (grown == nullptr) return false;
    if (words_ != 0) std::memcpy(grown, bits_.get(), words_ * sizeof(std::uint64_t));
    bits_.reset(grown);
    capacity_ = words;
  }
  if (words > words_) std::fill(bits_.get() + words_, bits_.get() + words, 0);
  words_ = words;
  return true;
}

std::uint32_t DirtySet::Count() const {
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < words_; ++i) n += static_cast<std::uint32_t>(std::popcount(bits_[i]));
  return n;
}

std::vector<PageId> DirtySet::List() const {
  std::vector<PageId> out;
  out.reserve(Count());
  for (std::size_t i = 0; i < words_; ++i) {
    std::uint64_t w = bits_[i];
    while (w) {
      out.push_back(static_cast<PageId>(i * 64 + std::countr_zero(w)));
      w &= w - 1;
    }
  }
  return out;
}

Arena::Arena(std::uint32_t page_size, std::uint32_t page_count)
    : page_size_(page_size),
      page_shift_(static_cast<std::uint32_t>(std::countr_zero(page_size))),
      page_count_(page_count),
      capacity_pages_(0) {}

Result<Arena> Arena::Create(std::uint32_t page_size) {
  if (!ValidPageSize(page_size)) {
    return Status::InvalidArgument("page size " + std::to_string(page_size) +
                                   " is not a power of two in [4096, 65536]");
  }
  Arena arena(page_size, 0);
  KEEPSTATE_RETURN_IF_ERROR(arena.Grow(16));
  arena.page_count_ = 1;
  std::memset(arena.Write(0), 0, page_size);
  Superblock sb{};
  sb.magic = kArenaMagic;
  sb.format_version = kArenaFormatVersion;
  sb.page_size = page_size;
  sb.page_count = 1;
  arena.StoreSuperblock(sb);
  return arena;
}

Result<Arena> Arena::FromImage(std::vector<std::uint8_t> image,
                               std::uint32_t expected_page_size) {
  if (!ValidPageSize(expected_page_size)) {
    return Status::InvalidArgument("page size " + std::to_string(expected_page_size) +
                                   " is not a power of two in [4096, 65536]");
  }
  if (image.size() < expected_page_size || image.size() % expected_page_size != 0 ||
      image.size() / expected_page_size > 0xFFFFFFFFu) {
    return Status::Corruption("arena image of " + std::to_string(image.size()) +
                              " bytes is not a whole number of " +
                              std::to_string(expected_page_size) + "-byte pages");
  }
  KEEPSTATE_ASSIGN_OR_RETURN(
      PendingRestore pending,
      BeginRestore(expected_page_size, static_cast<std::uint32_t>(image.size() / expected_page_size)));
  std::memcpy(pending.image().data(), image.data(), image.size());
  return std::move(pending).Finish();
}

Result<Arena::PendingRestore> Arena::BeginRestore(std::uint32_t page_size, std::uint32_t page_count,
                                                  std::uint32_t reserve_pages) {
  if (!ValidPageSize(page_size)) {
    return Status::InvalidArgument("page size " + std::to_string(page_size) +
                                   " is not a power of two in [4096, 65536]");
  }
  if (page_count == 0) return Status::Corruption("arena image holds no pages");
  Arena arena(page_size, page_count);
  if (reserve_pages != 0 && reserve_pages < page_count) {
    KEEPSTATE_RETURN_IF_ERROR(arena.Grow(reserve_pages));
    return PendingRestore(std::move(arena));
  }
  // Room to grow by an eighth: without it the first page allocated after a
  // restore (the first insert that splits a leaf) copies the whole state into
  // a larger buffer (measured: 5-8 ms for 16 MiB in Chromium, on the first
  // replayed transaction of a rebase).
  const std::uint64_t headroom = std::max<std::uint64_t>(16, page_count / 8);
  const std::uint64_t room = std::min<std::uint64_t>(std::uint64_t{page_count} + headroom, 0xFFFFFFFFu);
  if (!arena.Grow(static_cast<std::uint32_t>(room)).ok()) KEEPSTATE_RETURN_IF_ERROR(arena.Grow(page_count));
  return PendingRestore(std::move(arena));
}

Status Arena::PendingRestore::EnsurePages(std::uint32_t pages) {
  pages = std::min(pages, arena_.page_count_);
  if (pages <= arena_.capacity_pages_) return Status::Ok();
  // Grow copies page_count_ pages: while they arrive, the buffer holds capacity_pages_.
  const std::uint32_t full = arena_.page_count_;
  arena_.page_count_ = arena_.capacity_pages_;
  const std::uint64_t doubled = std::max<std::uint64_t>(pages, std::uint64_t{arena_.capacity_pages_} * 2);
  const Status grown = arena_.Grow(static_cast<std::uint32_t>(std::min<std::uint64_t>(doubled, full)));
  arena_.page_count_ = full;
  return grown;
}

Result<Arena> Arena::PendingRestore::Finish() && {
  KEEPSTATE_RETURN_IF_ERROR(arena_.ValidateRestored());
  arena_.dirty_.ClearAll();
  return std::move(arena_);
}

Status Arena::ValidateRestored() {
  return ValidateState(superblock(), page_count_, [this](PageId id) { return Read(id); });
}

Status Arena::ValidateState(const Superblock& sb, std::uint32_t page_count,
                            const std::function<const std::uint8_t*(PageId)>& page) const {
  if (sb.magic != kArenaMagic) return Status::Corruption("superblock: bad magic");
  if (sb.format_version > kArenaFormatVersion) {
    return Status::Unsupported("superblock: arena format " + std::to_string(sb.format_version) +
                               " is newer than this build (" +
                               std::to_string(kArenaFormatVersion) + ")");
  }
  if (sb.format_version != kArenaFormatVersion) {
    return Status::Corruption("superblock: bad format version " +
                              std::to_string(sb.format_version));
  }
  if (sb.page_size != page_size_) {
    return Status::Corruption("superblock: page size " + std::to_string(sb.page_size) +
                              ", expected " + std::to_string(page_size_));
  }
  if (sb.page_count != page_count) {
    return Status::Corruption("superblock: page count " + std::to_string(sb.page_count) +
                              " but the image holds " + std::to_string(page_count) + " pages");
  }
  if (sb.root >= sb.page_count || sb.free_head >= sb.page_count ||
      sb.free_count >= sb.page_count || (sb.root == kNoPage) != (sb.tree_height == 0) ||
      sb.tree_height > 64) {
    return Status::Corruption("superblock: root, height or free list out of range");
  }
  // The free list is walked on every allocation: it must be a chain of
  // exactly free_count in-range pages ending in kNoPage (bounded walk: a
  // cycle must not hang the caller).
  std::uint64_t length = 0;
  for (PageId id = sb.free_head; id != kNoPage; ++length) {
    if (id >= page_count || length > sb.free_count) {
      return Status::Corruption("superblock: free list does not hold exactly " + std::to_string(sb.free_count) + " pages");
    }
    std::memcpy(&id, page(id), sizeof id);
  }
  if (length != sb.free_count) {
    return Status::Corruption("superblock: free list holds " + std::to_string(length) + " pages, expected " +
                              std::to_string(sb.free_count));
  }
  return Status::Ok();
}

Status Arena::ApplyPages(std::uint32_t page_count, std::span<const PageId> pages, const std::uint8_t* bytes) {
  assert(!journal_active_);
  if (page_count == 0) return Status::Corruption("arena image holds no pages");
  for (std::size_t i = 0; i < pages.size(); ++i) {
    if (pages[i] >= page_count || (i > 0 && pages[i] <= pages[i - 1])) {
      return Status::InvalidArgument("ApplyPages: pages must be ascending and below the page count");
    }
  }
  // Every page of the new state must be given or kept: pages this arena does not have must be given.
  for (PageId id = page_count_; id < page_count; ++id) {
    if (!std::binary_search(pages.begin(), pages.end(), id)) {
      return Status::InvalidArgument("ApplyPages: page " + std::to_string(id) + " is neither given nor kept");
    }
  }
  const auto page = [&](PageId id) -> const std::uint8_t* {
    auto it = std::lower_bound(pages.begin(), pages.end(), id);
    if (it != pages.end() && *it == id) return bytes + std::size_t(it - pages.begin()) * page_size_;
    return Read(id);
  };
  Superblock sb;
  std::memcpy(&sb, page(0), sizeof sb);
  KEEPSTATE_RETURN_IF_ERROR(ValidateState(sb, page_count, page));
  KEEPSTATE_RETURN_IF_ERROR(Grow(page_count));
  page_count_ = page_count;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    std::memcpy(buffer_.get() + (std::size_t{pages[i]} << page_shift_), bytes + i * page_size_, page_size_);
  }
  dirty_.ClearAll();  // sized by Grow for every page below capacity
  return Status::Ok();
}

Status Arena::Grow(std::uint32_t min_pages) {
  if (page_limit_ != 0 && min_pages > page_limit_) {
    return Status::OutOfSpace("arena page limit of " + std::to_string(page_limit_) +
                              " pages reached");
  }
  if (min_pages <= capacity_pages_) return Status::Ok();
  std::uint64_t want = std::max<std::uint64_t>(min_pages, capacity_pages_ + capacity_pages_ / 2);
  const std::uint64_t max_pages = (std::uint64_t{1} << 32) - 1;
  if (want > max_pages) want = max_pages;
  if (page_limit_ != 0 && want > page_limit_) want = page_limit_;
  if (want < min_pages) return Status::OutOfSpace("arena page count limit reached");
  // Everything that can fail comes first: on OutOfSpace the arena is as it was
  // (the dirty bits, sized for the most pages asked for, only have room to spare).
  if (!dirty_.Resize(static_cast<std::uint32_t>(want)) || !journaled_.Resize(static_cast<std::uint32_t>(want))) {
    return Status::OutOfSpace("cannot grow the arena's dirty bits to " + std::to_string(want) + " pages");
  }
  // Near the memory's end the growth shrinks, down to a sixty-fourth of the
  // capacity: wasm's malloc gives no single block of 2 GiB (page_buffer.cc),
  // so growing by half each time would stop a state at two thirds of what
  // fits, and growing by less would copy the whole state for every few pages.
  const std::uint64_t least =
      std::min<std::uint64_t>(want, min_pages + std::max<std::uint64_t>(16, capacity_pages_ / 64));
  const auto allocate = [&]() {
    for (std::uint64_t pages = want;; pages = std::max<std::uint64_t>(least, min_pages + (pages - min_pages) / 2)) {
      const std::size_t bytes = static_cast<std::size_t>(pages) << page_shift_;
      if ((bytes >> page_shift_) == pages) {
        if (PageBuffer fresh = AllocatePageBuffer(bytes)) return std::pair{std::move(fresh), pages};
      }
      if (pages <= least) return std::pair{PageBuffer(), std::uint64_t{0}};
    }
  };
  const std::size_t used = std::size_t{page_count_} << page_shift_;
  auto [fresh, pages] = allocate();
  if (fresh != nullptr) {
    if (buffer_) std::memcpy(fresh.get(), buffer_.get(), used);
  } else if (const PageBufferSpill* spill = GetPageBufferSpill(); spill != nullptr && buffer_ && spill->save(buffer_.get(), used)) {
    // The old buffer and the new one do not fit side by side (in wasm the
    // holes left by earlier, smaller buffers cannot hold the new one): the
    // bytes wait outside while the old buffer is freed.
    buffer_.reset();
    std::tie(fresh, pages) = allocate();
    if (fresh == nullptr) {
      // Invariant: nothing was allocated since the free, so its memory is there again.
      fresh = AllocatePageBuffer(std::size_t{capacity_pages_} << page_shift_);
      if (fresh == nullptr) std::abort();
      pages = capacity_pages_;
    }
    spill->load(fresh.get());
  }
  if (fresh == nullptr || pages < min_pages) {
    if (fresh != nullptr) buffer_ = std::move(fresh);  // the old buffer, spilled and taken back
    return Status::OutOfSpace("cannot grow the arena to " +
                              std::to_string(std::uint64_t{min_pages} << page_shift_) + " bytes");
  }
  buffer_ = std::move(fresh);
  want = pages;
  capacity_pages_ = static_cast<std::uint32_t>(want);
  return Status::Ok();
}

Status Arena::Reserve(std::uint32_t pages) {
  const std::uint32_t from_free = free_count();
  if (pages <= from_free) return Status::Ok();
  const std::uint64_t need = std::uint64_t{page_count_} + (pages - from_free);
  if (need > 0xFFFFFFFFu) return Status::OutOfSpace("arena page count limit reached");
  return Grow(static_cast<std::uint32_t>(need));
}

Result<PageId> Arena::Allocate() {
  Superblock sb = superblock();
  PageId id;
  if (sb.free_head != kNoPage) {
    id = sb.free_head;
    std::uint32_t next;
    std::memcpy(&next, Read(id), sizeof next);
    sb.free_head = next;
    sb.free_count--;
  } else {
    if (page_count_ == capacity_pages_) KEEPSTATE_RETURN_IF_ERROR(Grow(page_count_ + 1));
    id = page_count_++;
    sb.page_count = page_count_;
  }
  std::memset(Write(id), 0, page_size_);
  StoreSuperblock(sb);
  return id;
}

std::uint32_t Arena::TrimFreeTail() {
  assert(!journal_active_);
  Superblock sb = superblock();
  std::uint32_t trimmed = 0;
  while (sb.free_head != kNoPage && sb.free_head + 1 == page_count_) {
    std::memcpy(&sb.free_head, Read(sb.free_head), sizeof sb.free_head);
    sb.free_count--;
    dirty_.Clear(--page_count_);
    ++trimmed;
  }
  if (trimmed == 0) return 0;
  sb.page_count = page_count_;
  StoreSuperblock(sb);
  return trimmed;
}

void Arena::DropFreePagesAbove(std::uint32_t page_count) {
  assert(!journal_active_ && page_count >= 1 && page_count <= page_count_);
  Superblock sb = superblock();
  assert(sb.free_count == page_count_ - page_count);
  for (PageId id = page_count; id < page_count_; ++id) dirty_.Clear(id);
  page_count_ = page_count;
  sb.page_count = page_count;
  sb.free_head = kNoPage;
  sb.free_count = 0;
  StoreSuperblock(sb);
}

void Arena::Free(PageId id) {
  assert(id != kNoPage && id < page_count_);
  Superblock sb = superblock();
  std::uint8_t* p = Write(id);
  // Zero the page so freed bytes (old values) do not linger in snapshots.
  std::memset(p, 0, page_size_);
  std::memcpy(p, &sb.free_head, sizeof sb.free_head);
  sb.free_head = id;
  sb.free_count++;
  StoreSuperblock(sb);
}

Superblock Arena::superblock() const {
  Superblock sb;
  std::memcpy(&sb, Read(0), sizeof sb);
  return sb;
}

void Arena::StoreSuperblock(const Superblock& sb) { std::memcpy(Write(0), &sb, sizeof sb); }

void Arena::SetTree(PageId root, std::uint32_t height) {
  Superblock sb = superblock();
  sb.root = root;
  sb.tree_height = height;
  StoreSuperblock(sb);
}

void Arena::AddEntries(std::int64_t delta) {
  Superblock sb = superblock();
  sb.entry_count = static_cast<std::uint64_t>(static_cast<std::int64_t>(sb.entry_count) + delta);
  StoreSuperblock(sb);
}

void Arena::SetUserVersion(std::uint64_t v) {
  Superblock sb = superblock();
  sb.user_version = v;
  StoreSuperblock(sb);
}

std::vector<PageId> Arena::FreePages() const {
  std::vector<PageId> out;
  PageId id = superblock().free_head;
  // Bounded walk: a cycle in a corrupted list must not hang the caller.
  while (id != kNoPage && id < page_count_ && out.size() <= page_count_) {
    out.push_back(id);
    std::memcpy(&id, Read(id), sizeof id);
  }
  return out;
}

void Arena::BeginJournal() {
  assert(!journal_active_);
  journal_active_ = true;
  journal_page_count_ = page_count_;
  // Sized by Grow for every page below capacity: no memory needed here.
  [[maybe_unused]] const bool sized = journaled_.Resize(page_count_);
  assert(sized);
  journaled_.ClearAll();
  journal_.clear();
  journal_bytes_.clear();
}

void Arena::JournalPage(PageId id) {
  // Pages appended after BeginJournal need no image: rollback drops them.
  if (id >= journal_page_count_ || journaled_.Test(id)) return;
  journaled_.Set(id);
  const std::size_t offset = journal_bytes_.size();
  journal_bytes_.resize(offset + page_size_);
  std::memcpy(journal_bytes_.data() + offset, Read(id), page_size_);
  journal_.push_back({id, dirty_.Test(id), offset});
}

void Arena::CommitJournal() {
  journal_active_ = false;
  journal_.clear();
  journal_bytes_.clear();
}

void Arena::RollbackJournal() {
  assert(journal_active_);
  journal_active_ = false;
  for (const JournalEntry& e : journal_) {
    std::memcpy(buffer_.get() + (std::size_t{e.id} << page_shift_),
                journal_bytes_.data() + e.offset, page_size_);
    if (e.was_dirty) {
      dirty_.Set(e.id);
    } else {
      dirty_.Clear(e.id);
    }
  }
  for (PageId id = journal_page_count_; id < page_count_; ++id) dirty_.Clear(id);
  page_count_ = journal_page_count_;
  journal_.clear();
  journal_bytes_.clear();
}

void Arena::ClearDirty(std::span<const PageId> pages) {
  for (PageId id : pages) {
    if (id < capacity_pages_) dirty_.Clear(id);
  }
}

void Arena::MarkDirty(std::span<const PageId> pages) {
  for (PageId id : pages) {
    if (id < page_count_) dirty_.Set(id);
  }
}

}  // namespace keepstate::engine
