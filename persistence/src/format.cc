// Encoders and decoders for the head and manifest records (see format.h and
// docs/snapshot-format.md).
//
// Invariant: every decoder checks sizes before reading, checks the checksum
// before trusting any field, and checks FlatBuffers structure with the
// Verifier before touching the body; every error names the record and field.
//
// Fuzz builds (KEEPSTATE_FUZZ_NO_CHECKSUMS) compute checksums but ignore a
// mismatch, so that the fuzzer reaches the structural checks behind them.
#include "keepstate/persistence/format.h"

#include <charconv>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "keepstate/engine/arena.h"

#include "manifest_encoder.h"
#include "snapshot_generated.h"

namespace keepstate::persistence {
namespace {

static_assert(sizeof(fb::PackRef) == 24, "PackRef layout is part of the format");
static_assert(sizeof(fb::PageRef) == 24, "PageRef layout is part of the format");
static_assert(sizeof(fb::ChangedPage) == 32, "ChangedPage layout is part of the format");
static_assert(sizeof(XXH128_hash_t) == 16);
// EncodeManifest copies PageLocation arrays as PageRef arrays.
static_assert(sizeof(PageLocation) == sizeof(fb::PageRef));
static_assert(offsetof(PageLocation, pack) == 0 && offsetof(PageLocation, offset) == 4 &&
              offsetof(PageLocation, hash) == 8 && offsetof(Hash128, low) == 0 &&
              offsetof(Hash128, high) == 8);

#ifdef KEEPSTATE_FUZZ_NO_CHECKSUMS
constexpr bool kEnforceChecksums = false;
#else
constexpr bool kEnforceChecksums = true;
#endif

void AppendHex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kDigits[(v >> (4 * i)) & 15]);
}

bool ParseHex(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::string Num(std::uint64_t v) { return std::to_string(v); }

}  // namespace

std::string_view RecordKindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kHead:
      return "head";
    case RecordKind::kManifest:
      return "manifests";
    case RecordKind::kPack:
      return "packs";
  }
  return "unknown";
}

Hash128 HashBytes(std::span<const std::uint8_t> bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return {h.low64, h.high64};
}

std::uint64_t HashBytes64(std::span<const std::uint8_t> bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

struct StreamingHash128::State {
  XXH3_state_t xxh;
};

StreamingHash128::StreamingHash128() : state_(std::make_unique<State>()) {
  XXH3_128bits_reset(&state_->xxh);
}
StreamingHash128::~StreamingHash128() = default;
StreamingHash128::StreamingHash128(StreamingHash128&&) noexcept = default;
StreamingHash128& StreamingHash128::operator=(StreamingHash128&&) noexcept = default;

void StreamingHash128::Update(std::span<const std::uint8_t> bytes) {
  XXH3_128bits_update(&state_->xxh, bytes.data(), bytes.size());
}

Hash128 StreamingHash128::Digest() const {
  XXH128_hash_t h = XXH3_128bits_digest(&state_->xxh);
  return {h.low64, h.high64};
}

bool IsValidPageSize(std::uint64_t s) {
  return s >= engine::kMinPageSize && s <= engine::kMaxPageSize && std::has_single_bit(s);
}

bool IsBlankPage(std::span<const std::uint8_t> page, std::uint32_t* word) {
  // Eight bytes at a time; pages are whole multiples of 4096 bytes.
  std::uint64_t rest = 0;
  std::memcpy(&rest, page.data(), 8);
  if ((rest >> 32) != 0) return false;
  for (std::size_t i = 8; i < page.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, page.data() + i, 8);
    if (w != 0) return false;
  }
  *word = static_cast<std::uint32_t>(rest);
  return true;
}

void FillBlankPage(std::span<std::uint8_t> page, std::uint32_t word) {
  std::memset(page.data(), 0, page.size());
  std::memcpy(page.data(), &word, sizeof word);
}

std::string ManifestKey(std::uint64_t version) {
  std::string s;
  s.reserve(kManifestKeyDigits);
  AppendHex(s, version, kManifestKeyDigits);
  return s;
}

std::string PackKey(const PackId& id) {
  std::string s;
  s.reserve(42);
  AppendHex(s, id.version, 16);
  s.push_back('-');
  AppendHex(s, id.writer, 16);
  s.push_back('-');
  AppendHex(s, id.index, 8);
  return s;
}

Result<std::uint64_t> ParseManifestKey(std::string_view key) {
  std::uint64_t v;
  if (key.size() != kManifestKeyDigits || !ParseHex(key, v)) {
    return Status::InvalidArgument("malformed manifest key '" + std::string(key) + "'");
  }
  return v;
}

Result<PackId> ParsePackKey(std::string_view key) {
  std::uint64_t version, writer, index;
  if (key.size() != 42 || key[16] != '-' || key[33] != '-' || !ParseHex(key.substr(0, 16), version) ||
      !ParseHex(key.substr(17, 16), writer) || !ParseHex(key.substr(34, 8), index)) {
    return Status::InvalidArgument("malformed pack key '" + std::string(key) + "'");
  }
  return PackId{version, writer, static_cast<std::uint32_t>(index)};
}

// --- head -------------------------------------------------------------------

std::vector<std::uint8_t> EncodeHead(const Head& head) {
  HeadLayout l{};
  l.magic = kHeadMagic;
  l.format_version = head.format_version;
  l.version = head.version;
  l.base_version = head.base_version;
  l.writer_id = head.writer_id;
  l.manifest_check = head.manifest_check;
  l.checksum = XXH3_64bits(&l, offsetof(HeadLayout, checksum));
  std::vector<std::uint8_t> out(sizeof l);
  std::memcpy(out.data(), &l, sizeof l);
  return out;
}

Result<Head> DecodeHead(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != sizeof(HeadLayout)) {
    return Status::Corruption("head: " + Num(bytes.size()) + " bytes, expected " +
                              Num(sizeof(HeadLayout)));
  }
  HeadLayout l;
  std::memcpy(&l, bytes.data(), sizeof l);
  if (l.magic != kHeadMagic) return Status::Corruption("head: bad magic");
  if (kEnforceChecksums && l.checksum != XXH3_64bits(bytes.data(), offsetof(HeadLayout, checksum))) {
    return Status::Corruption("head: checksum mismatch");
  }
  if (l.format_version > kFormatVersion) {
    return Status::Unsupported("head: snapshot format " + Num(l.format_version) +
                               " is newer than this build (" + Num(kFormatVersion) + ")");
  }
  if (l.format_version == 0) return Status::Corruption("head: format version 0");
  if (l.version == 0 || l.base_version >= l.version) {
    return Status::Corruption("head: version " + Num(l.version) + " with base " +
                              Num(l.base_version));
  }
  return Head{l.format_version, l.version, l.base_version, l.writer_id, l.manifest_check};
}

// --- manifest ---------------------------------------------------------------

std::vector<std::uint8_t> internal::EncodeManifestWith(const Manifest& m, std::uint32_t page_count,
                                                       FillPages fill, void* context) {
  flatbuffers::FlatBufferBuilder fbb(1024 + std::size_t{page_count} * sizeof(fb::PageRef) +
                                     m.packs.size() * sizeof(fb::PackRef));
  // PageLocation has PageRef's exact layout (asserted above): the caller
  // writes the page table in place.
  fb::PageRef* page_refs = nullptr;
  auto pages = fbb.CreateUninitializedVectorOfStructs<fb::PageRef>(page_count, &page_refs);
  fill(context, {reinterpret_cast<PageLocation*>(page_refs), page_count});
  flatbuffers::Offset<flatbuffers::Vector<const fb::ChangedPage*>> changes;
  if (m.is_delta()) {
    fb::ChangedPage* change_refs = nullptr;
    changes = fbb.CreateUninitializedVectorOfStructs<fb::ChangedPage>(m.changes.size(), &change_refs);
    for (std::size_t i = 0; i < m.changes.size(); ++i) {
      const ChangedPage& c = m.changes[i];
      change_refs[i] = fb::ChangedPage(c.page, c.location.pack, c.location.offset, 0, c.location.hash.low,
                                       c.location.hash.high);
    }
  }
  fb::PackRef* pack_refs = nullptr;
  auto packs = fbb.CreateUninitializedVectorOfStructs<fb::PackRef>(m.packs.size(), &pack_refs);
  for (std::size_t i = 0; i < m.packs.size(); ++i) {
    const PackEntry& p = m.packs[i];
    pack_refs[i] = fb::PackRef(p.id.version, p.id.writer, p.id.index, p.size);
  }
  fb::ManifestBuilder mb(fbb);
  mb.add_format_version(m.format_version);
  mb.add_store_id(m.store_id);
  mb.add_version(m.version);
  mb.add_base_version(m.base_version);
  mb.add_writer_id(m.writer_id);
  mb.add_created_unix_ms(m.created_unix_ms);
  mb.add_page_size(m.page_size);
  mb.add_page_count(m.page_count);
  mb.add_packs(packs);
  mb.add_pages(pages);
  if (m.is_delta()) {
    mb.add_delta_base(m.delta_base);
    mb.add_delta_base_check(m.delta_base_check);
    mb.add_changes(changes);
  }
  fb::FinishManifestBuffer(fbb, mb.Finish());

  const std::uint32_t body_size = fbb.GetSize();
  ManifestEnvelope env{kManifestMagic, m.format_version, body_size, 0};
  std::vector<std::uint8_t> out;
  // Appended, not resized then overwritten: no pass to zero 1.5 MiB first.
  out.reserve(sizeof env + body_size + kManifestTrailerSize);
  const auto* env_bytes = reinterpret_cast<const std::uint8_t*>(&env);
  out.insert(out.end(), env_bytes, env_bytes + sizeof env);
  out.insert(out.end(), fbb.GetBufferPointer(), fbb.GetBufferPointer() + body_size);
  XXH128_hash_t h = XXH3_128bits(out.data(), out.size());
  const auto* lo = reinterpret_cast<const std::uint8_t*>(&h.low64);
  const auto* hi = reinterpret_cast<const std::uint8_t*>(&h.high64);
  out.insert(out.end(), lo, lo + 8);
  out.insert(out.end(), hi, hi + 8);
  return out;
}

std::vector<std::uint8_t> EncodeManifest(const Manifest& m) {
  return internal::EncodeManifestWith(
      m, m.is_delta() ? 0 : static_cast<std::uint32_t>(m.pages.size()),
      [](void* context, std::span<PageLocation> out) {
        const Manifest& src = *static_cast<const Manifest*>(context);
        if (!out.empty()) std::memcpy(out.data(), src.pages.data(), out.size_bytes());
      },
      const_cast<Manifest*>(&m));
}

Hash128 ManifestRecordChecksum(std::span<const std::uint8_t> record) {
  Hash128 h;
  if (record.size() < sizeof(ManifestEnvelope) + kManifestTrailerSize) return h;
  const std::uint8_t* t = record.data() + record.size() - kManifestTrailerSize;
  std::memcpy(&h.low, t, 8);
  std::memcpy(&h.high, t + 8, 8);
  return h;
}

Result<Manifest> DecodeManifest(std::span<const std::uint8_t> record) {
  constexpr std::size_t kFixed = sizeof(ManifestEnvelope) + kManifestTrailerSize;
  if (record.size() < kFixed) {
    return Status::Corruption("manifest: record of " + Num(record.size()) + " bytes is truncated");
  }
  ManifestEnvelope env;
  std::memcpy(&env, record.data(), sizeof env);
  if (env.magic != kManifestMagic) return Status::Corruption("manifest: bad magic");
  if (env.body_size > kMaxManifestBodyBytes || env.body_size != record.size() - kFixed) {
    return Status::Corruption("manifest: body size " + Num(env.body_size) + " but record holds " +
                              Num(record.size() - kFixed));
  }
  const Hash128 stored = ManifestRecordChecksum(record);
  const Hash128 actual = HashBytes(record.first(record.size() - kManifestTrailerSize));
  if (kEnforceChecksums && stored != actual) return Status::Corruption("manifest: checksum mismatch");
  // The envelope is frozen across format versions, so a newer version is
  // recognised here, before the body (whose schema may have changed) is read.
  if (env.format_version > kFormatVersion) {
    return Status::Unsupported("manifest: snapshot format " + Num(env.format_version) +
                               " is newer than this build (" + Num(kFormatVersion) + ")");
  }
  if (env.format_version == 0 || env.reserved != 0) {
    return Status::Corruption("manifest: bad envelope (format 0 or reserved bits set)");
  }

  // FlatBuffers reads fields in place, so the body must be 8-byte aligned in
  // memory (the envelope keeps it aligned relative to the record start; the
  // caller's buffer may not be aligned).
  const std::uint8_t* body = record.data() + sizeof env;
  std::vector<std::uint64_t> aligned_copy;
  if (reinterpret_cast<std::uintptr_t>(body) % 8 != 0) {
    aligned_copy.resize((env.body_size + 7) / 8);
    std::memcpy(aligned_copy.data(), body, env.body_size);
    body = reinterpret_cast<const std::uint8_t*>(aligned_copy.data());
  }
  flatbuffers::Verifier::Options opts;
  opts.max_depth = 8;
  opts.max_tables = 16;
  flatbuffers::Verifier verifier(body, env.body_size, opts);
  if (!fb::VerifyManifestBuffer(verifier)) {
    return Status::Corruption("manifest: FlatBuffer verification failed");
  }
  const fb::Manifest* fm = fb::GetManifest(body);

  Manifest m;
  m.format_version = fm->format_version();
  m.store_id = fm->store_id();
  m.version = fm->version();
  m.base_version = fm->base_version();
  m.writer_id = fm->writer_id();
  m.created_unix_ms = fm->created_unix_ms();
  m.page_size = fm->page_size();
  m.page_count = fm->page_count();
  const std::string where = "manifest " + Num(m.version) + ": ";
  if (m.format_version != env.format_version) {
    return Status::Corruption(where + "format version " + Num(m.format_version) +
                              " differs from its envelope's " + Num(env.format_version));
  }
  if (m.version == 0 || m.base_version >= m.version) {
    return Status::Corruption(where + "base version " + Num(m.base_version) + " is not older");
  }
  if (!IsValidPageSize(m.page_size)) return Status::Corruption(where + "bad page size " + Num(m.page_size));
  const auto* packs = fm->packs();
  const auto* pages = fm->pages();
  if (packs == nullptr || pages == nullptr) return Status::Corruption(where + "packs or pages missing");
  // The Verifier (2.0.8) checks a vector's length word for 4-byte alignment
  // but not its struct elements for their own (8-byte) alignment; found by
  // fuzz_restore. The body is 8-byte aligned, so check the absolute address.
  // An empty vector has no elements to misalign (FlatBuffers does not pad
  // one): a commit that changed no page writes an empty changes vector.
  if ((packs->size() != 0 && reinterpret_cast<std::uintptr_t>(packs->data()) % alignof(fb::PackRef) != 0) ||
      (pages->size() != 0 && reinterpret_cast<std::uintptr_t>(pages->data()) % alignof(fb::PageRef) != 0)) {
    return Status::Corruption(where + "misaligned packs or pages vector");
  }
  m.delta_base = fm->delta_base();
  m.delta_base_check = fm->delta_base_check();
  const auto* changes = fm->changes();
  if (m.format_version < 2 && (m.delta_base != 0 || m.delta_base_check != 0 || changes != nullptr)) {
    return Status::Corruption(where + "delta fields in a format " + Num(m.format_version) + " manifest");
  }
  if (m.page_count == 0) return Status::Corruption(where + "page count 0");
  if (m.is_delta()) {
    if (m.delta_base >= m.version) {
      return Status::Corruption(where + "delta base " + Num(m.delta_base) + " is not older");
    }
    if (pages->size() != 0 || changes == nullptr) {
      return Status::Corruption(where + "a delta must list changes and no full page table");
    }
    if (changes->size() != 0 && reinterpret_cast<std::uintptr_t>(changes->data()) % alignof(fb::ChangedPage) != 0) {
      return Status::Corruption(where + "misaligned changes vector");
    }
    if (changes->size() > m.page_count) {
      return Status::Corruption(where + Num(changes->size()) + " changes for " + Num(m.page_count) + " pages");
    }
  } else if (m.delta_base_check != 0 || changes != nullptr || pages->size() != m.page_count) {
    return Status::Corruption(where + "page count " + Num(m.page_count) + " but " +
                              Num(pages->size()) + " page entries");
  }
  m.packs.reserve(packs->size());
  for (flatbuffers::uoffset_t i = 0; i < packs->size(); ++i) {
    const fb::PackRef* p = packs->Get(i);
    if (p->size() == 0 || p->size() > kMaxPackBytes || p->size() % m.page_size != 0) {
      return Status::Corruption(where + "pack " + Num(i) + " has bad size " + Num(p->size()));
    }
    m.packs.push_back({{p->version(), p->writer(), p->index()}, p->size()});
  }
  // A page reference must name one of the packs and lie inside it.
  auto check_ref = [&](std::uint32_t page, std::uint32_t pack, std::uint32_t offset) -> Status {
    if (pack == kBlankPage && m.format_version >= 3) return Status::Ok();  // offset: its first word
    if (pack >= m.packs.size()) {
      return Status::Corruption(where + "page " + Num(page) + " refers to pack " + Num(pack) + " of " +
                                Num(m.packs.size()));
    }
    const std::uint64_t end = std::uint64_t{offset} + m.page_size;
    if (offset % m.page_size != 0 || end > m.packs[pack].size) {
      return Status::Corruption(where + "page " + Num(page) + " at offset " + Num(offset) +
                                " lies outside its pack");
    }
    return Status::Ok();
  };
  if (m.is_delta()) {
    m.changes.reserve(changes->size());
    for (flatbuffers::uoffset_t i = 0; i < changes->size(); ++i) {
      const fb::ChangedPage* c = changes->Get(i);
      if (c->page() >= m.page_count || (i > 0 && c->page() <= m.changes.back().page) || c->reserved() != 0) {
        return Status::Corruption(where + "change " + Num(i) + " (page " + Num(c->page()) +
                                  ") is out of order, out of range or has reserved bits set");
      }
      KEEPSTATE_RETURN_IF_ERROR(check_ref(c->page(), c->pack(), c->offset()));
      m.changes.push_back({c->page(), {c->pack(), c->offset(), {c->hash_low(), c->hash_high()}}});
    }
    return m;
  }
  m.pages.reserve(pages->size());
  for (flatbuffers::uoffset_t i = 0; i < pages->size(); ++i) {
    const fb::PageRef* p = pages->Get(i);
    KEEPSTATE_RETURN_IF_ERROR(check_ref(i, p->pack(), p->offset()));
    m.pages.push_back({p->pack(), p->offset(), {p->hash_low(), p->hash_high()}});
  }
  return m;
}

}  // namespace keepstate::persistence
