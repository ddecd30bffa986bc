// The snapshot storage format: records, keys, the head record, the manifest
// record's envelope, checksums and their encoders/decoders.
//
// docs/snapshot-format.md is the specification; this header mirrors it and
// the static_asserts below pin every fixed layout, so a change here without a
// change there (and a format version bump) fails to compile or fails review.
//
// Invariants:
//  - All integers are little-endian (static_assert below: wasm32 and x86-64
//    are little-endian, and the format is defined as such).
//  - Decoders treat their input as untrusted: any malformed input produces
//    Corruption (or Unsupported for a newer format), never a crash, never an
//    allocation larger than the input justifies.
//  - Generated FlatBuffers code stays out of this header (it is private to
//    the persistence library).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/status.h"

namespace keepstate::persistence {

static_assert(std::endian::native == std::endian::little,
              "the snapshot format is little-endian and is read with memcpy");

// The snapshot format version written by this build. Readers accept every
// version <= kFormatVersion they know and return Unsupported for newer ones.
// 1: every manifest is full. 2: a manifest may be a delta over an older one.
// 3: a page may be blank (kBlankPage): stored in its manifest entry alone.
inline constexpr std::uint32_t kFormatVersion = 3;
// A version's manifest chain (itself, then its delta bases down to a full
// manifest) is at most this long; a longer chain is Corruption. Writers keep
// chains far shorter (persister.cc: about log2 of the page count).
inline constexpr std::uint32_t kMaxManifestChain = 64;

// Which object store (IndexedDB) a record lives in.
enum class RecordKind : std::uint8_t {
  kHead = 0,      // the single "head" record: which version is current
  kManifest = 1,  // one per retained version, key = version in hex
  kPack = 2,      // page data, key = (version, writer, index) in hex
};
inline constexpr int kRecordKindCount = 3;
std::string_view RecordKindName(RecordKind kind);  // "head", "manifests", "packs"

// The key of a record: its object store and its string key.
struct RecordKey {
  RecordKind kind = RecordKind::kHead;
  std::string key;
  friend bool operator==(const RecordKey&, const RecordKey&) = default;
  // Not <=>: libc++ 13 (Emscripten 3.1.6) has no three-way std::string compare.
  friend bool operator<(const RecordKey& a, const RecordKey& b) {
    return a.kind != b.kind ? a.kind < b.kind : a.key < b.key;
  }
};

// The key of the head record (there is exactly one).
inline constexpr std::string_view kHeadKey = "head";

// XXH3-128, seed 0.
struct Hash128 {
  std::uint64_t low = 0;
  std::uint64_t high = 0;
  friend bool operator==(const Hash128&, const Hash128&) = default;
};
Hash128 HashBytes(std::span<const std::uint8_t> bytes);
// XXH3-64, seed 0 (the head record's and the snapshot file header's check).
std::uint64_t HashBytes64(std::span<const std::uint8_t> bytes);

// XXH3-128 (seed 0) of bytes that arrive in pieces: Digest() after
// Update(a), Update(b) equals HashBytes of a followed by b. For streams too
// large to hold at once (snapshot files, snapshot_file.h).
class StreamingHash128 {
 public:
  StreamingHash128();
  ~StreamingHash128();
  StreamingHash128(StreamingHash128&&) noexcept;
  StreamingHash128& operator=(StreamingHash128&&) noexcept;

  void Update(std::span<const std::uint8_t> bytes);
  // The hash of everything fed so far (the state is unchanged).
  Hash128 Digest() const;

 private:
  struct State;  // xxHash's state, kept out of this header
  std::unique_ptr<State> state_;
};

// Whether `size` is a page size the formats accept: a power of two in
// [engine::kMinPageSize, engine::kMaxPageSize].
bool IsValidPageSize(std::uint64_t size);

// Identifies a pack. Unique per writer: two writers (tabs) committing the
// same version still produce distinct keys, so a losing writer's data can
// never collide with the winner's.
struct PackId {
  std::uint64_t version = 0;  // version of the commit that wrote it
  std::uint64_t writer = 0;   // writer id of that commit
  std::uint32_t index = 0;    // index of the pack within that commit
  friend bool operator==(const PackId&, const PackId&) = default;
  friend auto operator<=>(const PackId&, const PackId&) = default;
};

// A manifest key's length: the version in lowercase hex, zero-padded.
inline constexpr std::uint32_t kManifestKeyDigits = 16;
// "000000000000002a" (kManifestKeyDigits lowercase hex digits: lexicographic = numeric).
std::string ManifestKey(std::uint64_t version);
// "000000000000002a-00000000deadbeef-00000000"
std::string PackKey(const PackId& id);
// Parses a ManifestKey; InvalidArgument if malformed.
Result<std::uint64_t> ParseManifestKey(std::string_view key);
// Parses a PackKey; InvalidArgument if malformed.
Result<PackId> ParsePackKey(std::string_view key);

// ---------------------------------------------------------------------------
// Head record (object store "head", key "head"): 48 bytes, fixed layout.
inline constexpr std::uint32_t kHeadMagic = 0x4448534B;  // "KSHD" little-endian
struct HeadLayout {
  std::uint32_t magic;             // kHeadMagic
  std::uint32_t format_version;    // kFormatVersion of the writer
  std::uint64_t version;           // current version (>= 1)
  std::uint64_t base_version;      // version it replaced (0: none)
  std::uint64_t writer_id;         // who committed it
  std::uint64_t manifest_check;    // low 64 bits of the manifest record's checksum
  std::uint64_t checksum;          // XXH3-64 (seed 0) of bytes [0, 40)
};
static_assert(sizeof(HeadLayout) == 48, "head record layout is part of the format");
static_assert(offsetof(HeadLayout, version) == 8);
static_assert(offsetof(HeadLayout, manifest_check) == 32);
static_assert(offsetof(HeadLayout, checksum) == 40);

struct Head {
  std::uint32_t format_version = kFormatVersion;
  std::uint64_t version = 0;
  std::uint64_t base_version = 0;
  std::uint64_t writer_id = 0;
  std::uint64_t manifest_check = 0;
};
std::vector<std::uint8_t> EncodeHead(const Head& head);
// Corruption (size, magic, checksum) or Unsupported (newer format).
Result<Head> DecodeHead(std::span<const std::uint8_t> bytes);

// ---------------------------------------------------------------------------
// Manifest record (object store "manifests", key ManifestKey(version)):
//   [ManifestEnvelope: 16 bytes][body: FlatBuffer, root Manifest, id "KSMF"]
//   [checksum: XXH3-128 of everything before it, low 64 then high 64]
inline constexpr std::uint32_t kManifestMagic = 0x464D534B;  // "KSMF" little-endian
struct ManifestEnvelope {
  std::uint32_t magic;           // kManifestMagic
  std::uint32_t format_version;  // equals the body's format_version
  std::uint32_t body_size;       // bytes of the FlatBuffer body
  std::uint32_t reserved;        // zero; keeps the body 8-byte aligned
};
static_assert(sizeof(ManifestEnvelope) == 16, "manifest envelope is part of the format");
inline constexpr std::size_t kManifestTrailerSize = 16;
// Bounds for untrusted manifests (well above anything a real store reaches).
inline constexpr std::uint32_t kMaxPackBytes = 64u << 20;
inline constexpr std::uint32_t kMaxManifestBodyBytes = 1u << 30;

// Where a page's bytes are stored and their hash.
struct PageLocation {
  std::uint32_t pack = 0;    // index into Manifest::packs, or kBlankPage
  std::uint32_t offset = 0;  // byte offset in the pack; a blank page's first word
  Hash128 hash;
};

// Format 3: PageLocation::pack of a blank page, one whose bytes are all zero
// but its first four, which hold PageLocation::offset (u32 LE). Such a page
// (a free page: Arena::Free leaves exactly that) is stored in no pack: its
// manifest entry says it all, so freeing a large value writes no page bytes.
inline constexpr std::uint32_t kBlankPage = 0xFFFFFFFF;
// Whether `page` is blank; if so, *word is its first word.
bool IsBlankPage(std::span<const std::uint8_t> page, std::uint32_t* word);
// Writes the blank page whose first word is `word` into `page`.
void FillBlankPage(std::span<std::uint8_t> page, std::uint32_t word);

// One entry of a delta manifest.
struct ChangedPage {
  std::uint32_t page = 0;
  PageLocation location;
};

struct PackEntry {
  PackId id;
  std::uint32_t size = 0;  // exact byte length of the pack record
};

// A decoded manifest (plain C++; the FlatBuffer is only the wire form).
struct Manifest {
  std::uint32_t format_version = kFormatVersion;
  std::uint64_t store_id = 0;
  std::uint64_t version = 0;
  std::uint64_t base_version = 0;
  std::uint64_t writer_id = 0;
  std::uint64_t created_unix_ms = 0;
  std::uint32_t page_size = 0;
  std::uint32_t page_count = 0;
  std::vector<PackEntry> packs;
  // A full manifest: pages[i] is page i, size() == page_count.
  std::vector<PageLocation> pages;
  // A delta manifest (format 2, delta_base != 0): pages is empty and
  // `changes` lists, ascending by page, every page whose location differs
  // from manifest delta_base's page table (pages at or above that manifest's
  // page count are all listed). ResolveManifest (restore.h) turns a delta
  // into the full table.
  std::uint64_t delta_base = 0;
  std::uint64_t delta_base_check = 0;  // low 64 bits of the base record's checksum
  std::vector<ChangedPage> changes;

  bool is_delta() const { return delta_base != 0; }
};

// Serializes a manifest record. REQUIRES: m is well formed (as checked by
// DecodeManifest).
std::vector<std::uint8_t> EncodeManifest(const Manifest& m);
// The checksum stored in a manifest record's trailer (REQUIRES: the record
// is at least the envelope plus trailer; used to bind the head to it).
Hash128 ManifestRecordChecksum(std::span<const std::uint8_t> record);

// Verifies and decodes a manifest record: size, magic, checksum, format
// version, FlatBuffers structure, page size, page count == pages (full) or
// changes ascending below page count (delta), every page reference within its
// pack and every pack within kMaxPackBytes. Does not read packs or bases. Errors: Corruption (naming what failed), Unsupported (newer
// format version).
Result<Manifest> DecodeManifest(std::span<const std::uint8_t> record);

}  // namespace keepstate::persistence
