// Snapshot file writer and reader (see snapshot_file.h and
// docs/snapshot-format.md, "Snapshot file").
//
// Invariant: the reader checks each field before it sizes, indexes or
// allocates anything, and hashes every byte it consumes exactly once.
//
// Fuzz builds (KEEPSTATE_FUZZ_NO_CHECKSUMS) compute the header check, page
// hashes and file checksum but ignore a mismatch, so that mutations reach
// the superblock and B+tree checks behind them.
#include "keepstate/persistence/snapshot_file.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace keepstate::persistence {
namespace {

#ifdef KEEPSTATE_FUZZ_NO_CHECKSUMS
constexpr bool kEnforceChecksums = false;
#else
constexpr bool kEnforceChecksums = true;
#endif

constexpr std::size_t kHeaderSize = sizeof(SnapshotFileHeader);
constexpr std::size_t kTrailerSize = sizeof(SnapshotFileTrailer);
// The frozen prefix: magic, format_version, header_size.
constexpr std::size_t kHeaderPrefixSize = 12;
constexpr std::size_t kHeaderCheckSize = 8;  // the last 8 bytes of every header
// The trailer bytes the file checksum covers.
constexpr std::size_t kTrailerHashedSize = offsetof(SnapshotFileTrailer, checksum_low);
static_assert(kTrailerHashedSize + 16 == kTrailerSize);

std::string Num(std::uint64_t v) { return std::to_string(v); }

Status Corrupt(const std::string& what) { return Status::Corruption("snapshot file: " + what); }

Status Prefixed(const Status& s) {
  if (s.ok()) return s;
  return Status(s.code(), "snapshot file: " + s.message());
}

std::span<const std::uint8_t> BytesOf(const void* p, std::size_t n) {
  return {static_cast<const std::uint8_t*>(p), n};
}

// Moves up to `want` bytes from the front of `chunk` to the end of `buf`
// (so that buf holds `want` bytes if the chunk had enough).
void Gather(std::vector<std::uint8_t>& buf, std::size_t want, std::span<const std::uint8_t>& chunk) {
  if (buf.size() >= want) return;
  const std::size_t k = std::min(want - buf.size(), chunk.size());
  buf.insert(buf.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(k));
  chunk = chunk.subspan(k);
}

}  // namespace

// --- writer -----------------------------------------------------------------

SnapshotWriter::SnapshotWriter(const engine::Arena& arena, const SnapshotSource& source)
    : arena_(&arena) {
  info_.format_version = kSnapshotFileFormatVersion;
  info_.page_size = arena.page_size();
  info_.page_count = arena.page_count();
  info_.user_version = arena.user_version();
  info_.entry_count = arena.entry_count();
  info_.store_version = source.store_version;
  info_.created_unix_ms = source.created_unix_ms;
  info_.file_size = SnapshotFileSize(info_.page_size, info_.page_count);
  size_ = info_.file_size;
  pages_begin_ = kHeaderSize;
  trailer_begin_ = size_ - kTrailerSize;

  header_.magic = kSnapshotFileMagic;
  header_.format_version = kSnapshotFileFormatVersion;
  header_.header_size = kHeaderSize;
  header_.page_size = info_.page_size;
  header_.page_count = info_.page_count;
  header_.reserved = 0;
  header_.user_version = info_.user_version;
  header_.entry_count = info_.entry_count;
  header_.store_version = info_.store_version;
  header_.created_unix_ms = info_.created_unix_ms;
  header_.header_check = HashBytes64(BytesOf(&header_, offsetof(SnapshotFileHeader, header_check)));
}

SnapshotWriter::SnapshotWriter(SnapshotWriter&&) noexcept = default;
SnapshotWriter& SnapshotWriter::operator=(SnapshotWriter&&) noexcept = default;
SnapshotWriter::~SnapshotWriter() = default;

Result<SnapshotWriter> SnapshotWriter::Begin(const engine::Arena& arena, const SnapshotSource& source) {
  SnapshotWriter w(arena, source);
  if (source.never_committed) w.dirty_at_begin_ = arena.dirty().Count();
  KEEPSTATE_RETURN_IF_ERROR(w.CheckUnchanged());
  return w;
}

Status SnapshotWriter::CheckUnchanged() const {
  if (arena_->page_count() != info_.page_count || arena_->dirty().Count() != dirty_at_begin_) {
    return Status::Busy(offset_ == 0
                            ? "snapshot export: the state has uncommitted changes (commit first)"
                            : "snapshot export: the state changed during the export");
  }
  return Status::Ok();
}

Result<std::size_t> SnapshotWriter::Read(std::span<std::uint8_t> out) {
  if (!error_.ok()) return error_;
  if (Status s = CheckUnchanged(); !s.ok()) {
    error_ = s;
    return s;
  }
  const std::uint32_t ps = info_.page_size;
  const std::uint64_t record = kSnapshotPageHashSize + ps;
  std::size_t n = 0;
  while (n < out.size() && offset_ < size_) {
    std::uint8_t* dst = out.data() + n;
    const std::size_t room = out.size() - n;
    std::size_t k;
    if (offset_ < pages_begin_) {
      k = static_cast<std::size_t>(std::min<std::uint64_t>(room, pages_begin_ - offset_));
      std::memcpy(dst, reinterpret_cast<const std::uint8_t*>(&header_) + offset_, k);
      file_hash_.Update({dst, k});
    } else if (offset_ < trailer_begin_) {
      const std::uint64_t rel = offset_ - pages_begin_;
      const auto page = static_cast<engine::PageId>(rel / record);
      const auto r = static_cast<std::size_t>(rel % record);
      if (r < kSnapshotPageHashSize) {
        if (hashed_page_ != page + 1) {
          page_hash_ = HashBytes({arena_->Read(page), ps});
          hashed_page_ = page + 1;
        }
        std::uint8_t h[kSnapshotPageHashSize];
        std::memcpy(h, &page_hash_.low, 8);
        std::memcpy(h + 8, &page_hash_.high, 8);
        k = std::min(room, kSnapshotPageHashSize - r);
        std::memcpy(dst, h + r, k);
      } else {
        k = static_cast<std::size_t>(std::min<std::uint64_t>(room, record - r));
        std::memcpy(dst, arena_->Read(page) + (r - kSnapshotPageHashSize), k);
      }
      file_hash_.Update({dst, k});
    } else {
      if (offset_ == trailer_begin_) {  // reached once: offset_ only grows
        trailer_.magic = kSnapshotTrailerMagic;
        trailer_.reserved = 0;
        trailer_.file_size = size_;
        file_hash_.Update(BytesOf(&trailer_, kTrailerHashedSize));
        const Hash128 sum = file_hash_.Digest();
        trailer_.checksum_low = sum.low;
        trailer_.checksum_high = sum.high;
      }
      k = static_cast<std::size_t>(std::min<std::uint64_t>(room, size_ - offset_));
      std::memcpy(dst, reinterpret_cast<const std::uint8_t*>(&trailer_) + (offset_ - trailer_begin_), k);
    }
    offset_ += k;
    n += k;
  }
  return n;
}

Result<std::vector<std::uint8_t>> EncodeSnapshotFile(const engine::Arena& arena,
                                                     const SnapshotSource& source) {
  KEEPSTATE_ASSIGN_OR_RETURN(SnapshotWriter w, SnapshotWriter::Begin(arena, source));
  std::vector<std::uint8_t> out(static_cast<std::size_t>(w.size()));
  KEEPSTATE_ASSIGN_OR_RETURN(std::size_t n, w.Read(out));
  if (n != out.size()) return Status::Internal("snapshot export: short read");
  return out;
}

// --- reader -----------------------------------------------------------------

SnapshotReader::SnapshotReader(const SnapshotReaderOptions& options) : options_(options) {
  small_.reserve(kHeaderSize);
}
SnapshotReader::SnapshotReader(SnapshotReader&&) noexcept = default;
SnapshotReader& SnapshotReader::operator=(SnapshotReader&&) noexcept = default;
SnapshotReader::~SnapshotReader() = default;

std::optional<std::uint64_t> SnapshotReader::remaining() const {
  if (!info_) return std::nullopt;
  return info_->file_size - offset_;
}

Status SnapshotReader::Fail(Status s) {
  error_ = s;
  pending_.reset();  // frees the partial state at once
  return s;
}

Status SnapshotReader::Add(std::span<const std::uint8_t> chunk) {
  if (!error_.ok()) return error_;
  Status s;
  if (!info_) s = AddHeader(chunk);
  if (s.ok() && info_ && pending_ && page_ < info_->page_count) s = AddPages(chunk);
  if (s.ok() && info_ && page_ == info_->page_count && !trailer_done_) s = AddTrailer(chunk);
  if (s.ok() && trailer_done_ && !chunk.empty()) {
    s = Corrupt(Num(chunk.size()) + " bytes after the end of the file (byte " +
                Num(info_->file_size) + ")");
  }
  if (!s.ok()) return Fail(std::move(s));
  return Status::Ok();
}

Status SnapshotReader::AddHeader(std::span<const std::uint8_t>& chunk) {
  // The frozen prefix first: magic, then the header's size (bounded before
  // anything is buffered by it).
  const std::size_t before = small_.size();
  Gather(small_, kHeaderPrefixSize, chunk);
  if (small_.size() >= 4 && before < 4) {
    std::uint32_t magic;
    std::memcpy(&magic, small_.data(), 4);
    if (magic != kSnapshotFileMagic) {
      return Corrupt("not a keepstate snapshot file (bad magic)");
    }
  }
  if (small_.size() < kHeaderPrefixSize) {
    offset_ += small_.size() - before;
    return Status::Ok();
  }
  std::uint32_t header_size;
  std::memcpy(&header_size, small_.data() + offsetof(SnapshotFileHeader, header_size), 4);
  if (header_size < kHeaderSize || header_size > kMaxSnapshotHeaderSize || header_size % 8 != 0) {
    return Corrupt("header size " + Num(header_size) + " is not a multiple of 8 in [" +
                   Num(kHeaderSize) + ", " + Num(kMaxSnapshotHeaderSize) + "]");
  }
  Gather(small_, header_size, chunk);
  offset_ += small_.size() - before;
  if (small_.size() < header_size) return Status::Ok();

  std::uint64_t check;
  std::memcpy(&check, small_.data() + header_size - kHeaderCheckSize, 8);
  if (kEnforceChecksums && check != HashBytes64({small_.data(), header_size - kHeaderCheckSize})) {
    return Corrupt("header checksum mismatch");
  }
  SnapshotFileHeader h;
  std::memcpy(&h, small_.data(), kHeaderSize);  // header_size >= kHeaderSize
  if (h.format_version == 0) return Corrupt("format version 0");
  if (h.format_version > kSnapshotFileFormatVersion) {
    return Status::Unsupported("snapshot file: format " + Num(h.format_version) +
                               " is newer than this build (" + Num(kSnapshotFileFormatVersion) + ")");
  }
  if (header_size != kHeaderSize) {
    return Corrupt("header size " + Num(header_size) + ", format 1 has " + Num(kHeaderSize));
  }
  if (!IsValidPageSize(h.page_size)) {
    return Corrupt("page size " + Num(h.page_size) + " is not a power of two in [4096, 65536]");
  }
  if (h.page_count == 0) return Corrupt("page count 0 (a state has at least its superblock)");
  if (h.reserved != 0) return Corrupt("reserved header field is " + Num(h.reserved));

  SnapshotFileInfo info;
  info.format_version = h.format_version;
  info.page_size = h.page_size;
  info.page_count = h.page_count;
  info.user_version = h.user_version;
  info.entry_count = h.entry_count;
  info.store_version = h.store_version;
  info.created_unix_ms = h.created_unix_ms;
  info.file_size = SnapshotFileSize(h.page_size, h.page_count);
  file_hash_.Update(small_);
  small_.clear();
  info_ = info;
  return StartPages();
}

Status SnapshotReader::StartPages() {
  const SnapshotFileInfo& info = *info_;
  const std::uint64_t state_bytes = std::uint64_t{info.page_count} * info.page_size;
  if (state_bytes > options_.max_state_bytes) {
    return Status::OutOfSpace("snapshot file: a state of " + Num(state_bytes) + " bytes (" +
                              Num(info.page_count) + " pages) exceeds the limit of " +
                              Num(options_.max_state_bytes));
  }
  if (options_.file_size && *options_.file_size != info.file_size) {
    return Corrupt(*options_.file_size < info.file_size
                       ? "truncated: " + Num(*options_.file_size) + " bytes, the header implies " +
                             Num(info.file_size)
                       : Num(*options_.file_size - info.file_size) +
                             " bytes after the end of the file (byte " + Num(info.file_size) + ")");
  }
  // Of a file of unknown size (a download without its length), only what the header claims:
  // memory is taken as pages arrive, not for the claim.
  constexpr std::uint32_t kPagesUpFront = 64;
  Result<engine::Arena::PendingRestore> pending =
      engine::Arena::BeginRestore(info.page_size, info.page_count, options_.file_size ? 0 : kPagesUpFront);
  if (!pending.ok()) return Prefixed(pending.status());
  pending_.emplace(std::move(pending).value());
  page_ = 0;
  page_offset_ = 0;
  return Status::Ok();
}

Status SnapshotReader::AddPages(std::span<const std::uint8_t>& chunk) {
  const std::uint32_t ps = info_->page_size;
  std::span<std::uint8_t> image = pending_->image();
  while (!chunk.empty() && page_ < info_->page_count) {
    if (page_offset_ < kSnapshotPageHashSize) {
      const std::size_t before = small_.size();
      Gather(small_, kSnapshotPageHashSize, chunk);
      const std::size_t k = small_.size() - before;
      page_offset_ += static_cast<std::uint32_t>(k);
      offset_ += k;
      if (small_.size() == kSnapshotPageHashSize) {
        std::memcpy(&expected_page_hash_.low, small_.data(), 8);
        std::memcpy(&expected_page_hash_.high, small_.data() + 8, 8);
        file_hash_.Update(small_);
        small_.clear();
      }
      continue;
    }
    const std::size_t r = page_offset_ - kSnapshotPageHashSize;
    if (page_ >= pending_->capacity_pages()) {
      KEEPSTATE_RETURN_IF_ERROR(Prefixed(pending_->EnsurePages(page_ + 1)));
      image = pending_->image();
    }
    const std::size_t k = std::min<std::size_t>(ps - r, chunk.size());
    std::uint8_t* page = image.data() + std::size_t{page_} * ps;
    std::memcpy(page + r, chunk.data(), k);
    file_hash_.Update(chunk.first(k));
    chunk = chunk.subspan(k);
    page_offset_ += static_cast<std::uint32_t>(k);
    offset_ += k;
    if (page_offset_ == kSnapshotPageHashSize + ps) {
      // Hashed where it landed (still in cache), as restore does.
      if (kEnforceChecksums && HashBytes({page, ps}) != expected_page_hash_) {
        return Corrupt("page " + Num(page_) + " (record at byte " +
                       Num(kHeaderSize + std::uint64_t{page_} * (kSnapshotPageHashSize + ps)) +
                       "): hash mismatch");
      }
      ++page_;
      page_offset_ = 0;
    }
  }
  return Status::Ok();
}

Status SnapshotReader::AddTrailer(std::span<const std::uint8_t>& chunk) {
  const std::size_t before = small_.size();
  Gather(small_, kTrailerSize, chunk);
  offset_ += small_.size() - before;
  if (small_.size() < kTrailerSize) return Status::Ok();
  SnapshotFileTrailer t;
  std::memcpy(&t, small_.data(), kTrailerSize);
  file_hash_.Update({small_.data(), kTrailerHashedSize});
  small_.clear();
  small_.shrink_to_fit();
  if (t.magic != kSnapshotTrailerMagic) return Corrupt("bad trailer magic");
  if (t.reserved != 0) return Corrupt("reserved trailer field is " + Num(t.reserved));
  if (t.file_size != info_->file_size) {
    return Corrupt("the trailer says " + Num(t.file_size) + " bytes, the header implies " +
                   Num(info_->file_size));
  }
  const Hash128 sum = file_hash_.Digest();
  if (kEnforceChecksums && (sum.low != t.checksum_low || sum.high != t.checksum_high)) {
    return Corrupt("file checksum mismatch");
  }
  trailer_done_ = true;
  return Status::Ok();
}

Result<ImportedSnapshot> SnapshotReader::Finish() && {
  if (!error_.ok()) return error_;
  if (!info_) {
    return Corrupt(offset_ == 0 ? std::string("empty")
                                : "truncated: " + Num(offset_) + " bytes, the header alone is " +
                                      Num(kHeaderSize));
  }
  if (!trailer_done_) {
    return Corrupt("truncated: " + Num(offset_) + " bytes, the header implies " +
                   Num(info_->file_size));
  }
  Result<engine::Arena> arena = std::move(*pending_).Finish();
  pending_.reset();
  if (!arena.ok()) return Prefixed(arena.status());
  if (arena->user_version() != info_->user_version) {
    return Corrupt("the header's schema version " + Num(info_->user_version) +
                   " is not the superblock's " + Num(arena->user_version()));
  }
  if (arena->entry_count() != info_->entry_count) {
    return Corrupt("the header's entry count " + Num(info_->entry_count) +
                   " is not the superblock's " + Num(arena->entry_count()));
  }
  Result<std::unique_ptr<engine::Store>> store =
      engine::Store::FromArena(std::move(arena).value(), /*verify=*/true);
  if (!store.ok()) return Prefixed(store.status());
  return ImportedSnapshot{*info_, std::move(store).value()};
}

Result<ImportedSnapshot> DecodeSnapshotFile(std::span<const std::uint8_t> bytes,
                                            const SnapshotReaderOptions& options) {
  SnapshotReaderOptions o = options;
  if (!o.file_size) o.file_size = bytes.size();
  SnapshotReader reader(o);
  KEEPSTATE_RETURN_IF_ERROR(reader.Add(bytes));
  return std::move(reader).Finish();
}

}  // namespace keepstate::persistence
