// Snapshot files: a store's committed state as ONE self-describing,
// checksummed byte stream (store.export(), importStore(), the native
// keepstate-snapshot tool).
//
// docs/snapshot-format.md ("Snapshot file") is the specification; the
// layouts and constants below mirror it and the static_asserts pin every
// offset. A change here changes the file format: bump
// kSnapshotFileFormatVersion.
//
//   [header: 64 bytes]
//   [page record 0] ... [page record page_count-1]   each: XXH3-128 (16) + page bytes
//   [trailer: 32 bytes]                               whole-file XXH3-128 at its end
//
// Both directions stream, so a 256 MiB state never needs a second copy of
// itself: SnapshotWriter copies the file out of the arena in chunks of the
// caller's size; SnapshotReader takes chunks of any size and copies each
// page straight into the arena it is building (Arena::BeginRestore),
// verifying its hash as it completes.
//
// Invariants:
//  - The reader trusts nothing: every size, count and offset is checked
//    before it is used, the header's own checksum is checked before any of
//    its fields sizes anything, and a state larger than
//    SnapshotReaderOptions::max_state_bytes is refused before allocating.
//    Malformed input is Corruption (Unsupported for an intact file of a
//    newer format), never a crash (fuzzed: tests/persistence/fuzz_snapshot_file.cc).
//  - Nothing is returned until the whole file verified: every page hash, the
//    trailer's whole-file checksum, the superblock (PendingRestore::Finish),
//    the header's fields against the superblock, and the B+tree
//    (engine::Store::FromArena with verify).
//
// Thread safety: none (one writer or reader per thread, like the Arena).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "keepstate/engine/arena.h"
#include "keepstate/engine/store.h"
#include "keepstate/persistence/format.h"
#include "keepstate/status.h"

namespace keepstate::persistence {

// The snapshot file format written by this build (independent of the record
// format's kFormatVersion). Readers accept 1..kSnapshotFileFormatVersion and
// return Unsupported for an intact file of a newer one.
inline constexpr std::uint32_t kSnapshotFileFormatVersion = 1;

// ---------------------------------------------------------------------------
// Header: the first 64 bytes. Frozen across versions: magic, format_version
// and header_size at offsets 0, 4, 8, and the header's last 8 bytes being
// XXH3-64 of the bytes before them, so that any reader can tell an intact
// newer file (Unsupported) from a damaged one (Corruption).
inline constexpr std::uint32_t kSnapshotFileMagic = 0x504E534B;  // "KSNP" little-endian
struct SnapshotFileHeader {
  std::uint32_t magic;            // kSnapshotFileMagic
  std::uint32_t format_version;   // kSnapshotFileFormatVersion of the writer
  std::uint32_t header_size;      // 64 in format 1 (a newer format may differ)
  std::uint32_t page_size;        // bytes per page: a power of two in [4096, 65536]
  std::uint32_t page_count;       // pages in the state, superblock included, >= 1
  std::uint32_t reserved;         // 0
  std::uint64_t user_version;     // the application's schema version (superblock)
  std::uint64_t entry_count;      // keys in the store (superblock)
  std::uint64_t store_version;    // committed version it was exported from (0: none)
  std::uint64_t created_unix_ms;  // when the file was written, informational
  std::uint64_t header_check;     // XXH3-64 of bytes [0, 56)
};
static_assert(sizeof(SnapshotFileHeader) == 64, "snapshot file header is part of the format");
static_assert(offsetof(SnapshotFileHeader, format_version) == 4);
static_assert(offsetof(SnapshotFileHeader, header_size) == 8);
static_assert(offsetof(SnapshotFileHeader, page_size) == 12);
static_assert(offsetof(SnapshotFileHeader, page_count) == 16);
static_assert(offsetof(SnapshotFileHeader, user_version) == 24);
static_assert(offsetof(SnapshotFileHeader, entry_count) == 32);
static_assert(offsetof(SnapshotFileHeader, store_version) == 40);
static_assert(offsetof(SnapshotFileHeader, created_unix_ms) == 48);
static_assert(offsetof(SnapshotFileHeader, header_check) == 56);
// The largest header_size any version may declare (bounds the bytes a
// reader buffers before it can check the header).
inline constexpr std::uint32_t kMaxSnapshotHeaderSize = 4096;

// Page record i (i = 0 .. page_count-1, in order): the XXH3-128 of page i
// (low 64 bits, then high 64), then its page_size bytes.
inline constexpr std::size_t kSnapshotPageHashSize = 16;

// Trailer: the last 32 bytes.
inline constexpr std::uint32_t kSnapshotTrailerMagic = 0x444E534B;  // "KSND" little-endian
struct SnapshotFileTrailer {
  std::uint32_t magic;          // kSnapshotTrailerMagic
  std::uint32_t reserved;       // 0
  std::uint64_t file_size;      // bytes of the whole file, trailer included
  std::uint64_t checksum_low;   // XXH3-128 of every byte before checksum_low
  std::uint64_t checksum_high;  //   (header, page records, trailer bytes [0, 16))
};
static_assert(sizeof(SnapshotFileTrailer) == 32, "snapshot file trailer is part of the format");
static_assert(offsetof(SnapshotFileTrailer, file_size) == 8);
static_assert(offsetof(SnapshotFileTrailer, checksum_low) == 16);

// Bytes of a format-1 file of `page_count` pages of `page_size` bytes.
constexpr std::uint64_t SnapshotFileSize(std::uint32_t page_size, std::uint32_t page_count) {
  return sizeof(SnapshotFileHeader) +
         std::uint64_t{page_count} * (kSnapshotPageHashSize + page_size) +
         sizeof(SnapshotFileTrailer);
}

// What a file's header says (all verified once SnapshotReader::Finish
// succeeds: user_version, entry_count, page_size and page_count equal the
// superblock's).
struct SnapshotFileInfo {
  std::uint32_t format_version = 0;
  std::uint32_t page_size = 0;
  std::uint32_t page_count = 0;
  std::uint64_t user_version = 0;
  std::uint64_t entry_count = 0;
  std::uint64_t store_version = 0;
  std::uint64_t created_unix_ms = 0;
  std::uint64_t file_size = 0;  // the whole file, as the header implies
};

// What the writer records besides the arena's own superblock fields.
struct SnapshotSource {
  std::uint64_t store_version = 0;    // committed version being exported (0: none)
  std::uint64_t created_unix_ms = 0;  // now
  // The state was never committed (a new store): its pages are dirty because
  // nothing ever stored them, not because they changed; they are the state.
  bool never_committed = false;
};

// ---------------------------------------------------------------------------
// Writes a snapshot file of an arena, streaming: the caller pulls the file
// in chunks of its choice (the wasm ABI: a fixed buffer in linear memory
// that JS copies out after each call), so the only memory beyond the arena
// is the caller's chunk buffer.
//
//   KEEPSTATE_ASSIGN_OR_RETURN(SnapshotWriter w, SnapshotWriter::Begin(arena, source));
//   std::vector<std::uint8_t> buf(1 << 20);
//   while (!w.done()) { KEEPSTATE_ASSIGN_OR_RETURN(std::size_t n, w.Read(buf)); sink(buf, n); }
//
// The file holds the arena's bytes as they are, which is the committed state
// only while no page is dirty: Begin refuses an arena with dirty pages, and
// Read refuses to continue once any page is dirty or the page count changed
// (a write landed mid-export), so a file never mixes two states. A state
// never committed (SnapshotSource::never_committed) is exported as it is:
// then Read refuses once the count of dirty pages or pages changed.
// REQUIRES: `arena` outlives the writer. To export the committed state, no
// commit may be in flight (a capture clears dirty bits before the commit
// lands).
class SnapshotWriter {
 public:
  // Busy if the arena has dirty pages (commit first).
  static Result<SnapshotWriter> Begin(const engine::Arena& arena, const SnapshotSource& source);
  SnapshotWriter(SnapshotWriter&&) noexcept;
  SnapshotWriter& operator=(SnapshotWriter&&) noexcept;
  ~SnapshotWriter();

  // Bytes of the whole file (known before the first Read).
  std::uint64_t size() const { return size_; }
  // Bytes produced so far.
  std::uint64_t offset() const { return offset_; }
  bool done() const { return offset_ == size_; }
  const SnapshotFileInfo& info() const { return info_; }

  // Copies the next min(out.size(), size() - offset()) bytes of the file
  // into `out` and returns how many. Busy (sticky) if the arena changed since
  // Begin: the bytes produced so far must be discarded.
  Result<std::size_t> Read(std::span<std::uint8_t> out);

 private:
  SnapshotWriter(const engine::Arena& arena, const SnapshotSource& source);
  Status CheckUnchanged() const;

  std::size_t dirty_at_begin_ = 0;  // never_committed: the dirty pages the state had
  const engine::Arena* arena_;
  SnapshotFileInfo info_;
  std::uint64_t size_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t pages_begin_ = 0;  // file offset of page record 0
  std::uint64_t trailer_begin_ = 0;
  SnapshotFileHeader header_{};
  SnapshotFileTrailer trailer_{};  // built when the output reaches it
  std::uint32_t hashed_page_ = 0;  // page whose hash is in page_hash_ (+1; 0: none)
  Hash128 page_hash_;
  StreamingHash128 file_hash_;
  Status error_;
};

// The whole file at once (tests, the native tool, small states).
// Errors: as SnapshotWriter::Begin.
Result<std::vector<std::uint8_t>> EncodeSnapshotFile(const engine::Arena& arena,
                                                     const SnapshotSource& source);

// ---------------------------------------------------------------------------
struct SnapshotReaderOptions {
  // Upper bound on the state (page_count * page_size); a header claiming
  // more is refused (OutOfSpace) before anything is allocated, as
  // RestoreOptions::max_state_bytes (an arena is one block, below 2 GiB in wasm).
  std::uint64_t max_state_bytes = std::uint64_t{2} << 30;
  // The source's length, when the caller knows it (File.size, stat): a
  // header implying another length is Corruption ("truncated" or "trailing
  // bytes") before the state is allocated.
  std::optional<std::uint64_t> file_size;
};

// A verified snapshot: the store it holds (all pages clean, as after a
// restore) and its header. To persist it as a new store (importStore), mark
// every page dirty (none has a stored copy yet) and commit it as that store's
// first version; snapshot_file_test.cc shows it.
struct ImportedSnapshot {
  SnapshotFileInfo info;
  std::unique_ptr<engine::Store> store;
};

// Reads and verifies a snapshot file fed in chunks of any size (1 byte to
// the whole file), building the state as it goes.
//
//   SnapshotReader r(options);
//   while (<more bytes>) KEEPSTATE_RETURN_IF_ERROR(r.Add(chunk));
//   KEEPSTATE_ASSIGN_OR_RETURN(ImportedSnapshot s, std::move(r).Finish());
//
// Memory: the state being built (allocated once the header verified) and a
// few dozen bytes; a chunk is never retained.
// Errors (Add and Finish; the first one is sticky and returned again):
//  - Corruption "snapshot file: <what>": not a snapshot file (bad magic),
//    header size, header checksum, format version 0, page size, page count,
//    reserved fields, page N hash mismatch, trailer magic, trailer file size,
//    file checksum mismatch, truncated (Finish before the end), trailing
//    bytes after the trailer, the superblock (PendingRestore::Finish), a
//    header field that disagrees with the superblock, the B+tree (BTree::Check).
//  - Unsupported: an intact header of a newer format version.
//  - OutOfSpace: the state exceeds max_state_bytes (or cannot be allocated).
class SnapshotReader {
 public:
  explicit SnapshotReader(const SnapshotReaderOptions& options = {});
  SnapshotReader(SnapshotReader&&) noexcept;
  SnapshotReader& operator=(SnapshotReader&&) noexcept;
  ~SnapshotReader();

  // Consumes the next bytes of the file.
  Status Add(std::span<const std::uint8_t> chunk);
  // The header, once it has arrived and verified (nullopt before).
  const std::optional<SnapshotFileInfo>& info() const { return info_; }
  // Bytes consumed so far.
  std::uint64_t offset() const { return offset_; }
  // Bytes still expected (known once the header arrived).
  std::optional<std::uint64_t> remaining() const;
  // Verifies the end of the file and the state; see the class comment.
  Result<ImportedSnapshot> Finish() &&;

 private:
  Status AddHeader(std::span<const std::uint8_t>& chunk);
  Status StartPages();
  Status AddPages(std::span<const std::uint8_t>& chunk);
  Status AddTrailer(std::span<const std::uint8_t>& chunk);
  Status Fail(Status s);

  SnapshotReaderOptions options_;
  std::optional<SnapshotFileInfo> info_;
  std::uint64_t offset_ = 0;
  // Header and trailer bytes, and a page record's hash, gathered across chunks.
  std::vector<std::uint8_t> small_;
  std::optional<engine::Arena::PendingRestore> pending_;
  std::uint32_t page_ = 0;           // page record being read
  std::uint32_t page_offset_ = 0;    // bytes of it consumed (hash included)
  Hash128 expected_page_hash_;
  StreamingHash128 file_hash_;
  bool trailer_done_ = false;
  Status error_;
};

// Reads and verifies a whole file in memory (SnapshotReader over one chunk).
Result<ImportedSnapshot> DecodeSnapshotFile(std::span<const std::uint8_t> bytes,
                                            const SnapshotReaderOptions& options = {});

}  // namespace keepstate::persistence
