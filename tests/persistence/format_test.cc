// Format tests: keys, head and manifest encodings round-trip, and the fixed
// layouts match docs/snapshot-format.md.
#include <catch2/catch.hpp>

#include "keepstate/persistence/format.h"

namespace keepstate::persistence {
namespace {

TEST_CASE("record keys round-trip and sort numerically", "[persistence]") {
  CHECK(ManifestKey(42) == "000000000000002a");
  CHECK(ParseManifestKey("000000000000002a").value() == 42);
  CHECK(ManifestKey(9) < ManifestKey(10));
  CHECK(!ParseManifestKey("2a").ok());
  CHECK(!ParseManifestKey("000000000000002A").ok());  // one spelling per key
  PackId id{7, 0xDEADBEEF, 3};
  CHECK(PackKey(id) == "0000000000000007-00000000deadbeef-00000003");
  CHECK(ParsePackKey(PackKey(id)).value() == id);
  CHECK(!ParsePackKey("0000000000000007-00000000deadbeef").ok());
  CHECK(!ParsePackKey("0000000000000007_00000000deadbeef_00000003").ok());
}

TEST_CASE("the head record round-trips and rejects damage", "[persistence]") {
  Head h{kFormatVersion, 12, 11, 99, 0x1234};
  std::vector<std::uint8_t> bytes = EncodeHead(h);
  REQUIRE(bytes.size() == 48);
  Head d = DecodeHead(bytes).value();
  CHECK(d.version == 12);
  CHECK(d.base_version == 11);
  CHECK(d.writer_id == 99);
  CHECK(d.manifest_check == 0x1234);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::vector<std::uint8_t> bad = bytes;
    bad[i] ^= 0x40;
    CHECK(DecodeHead(bad).status().IsCorruption());
  }
  bytes.pop_back();
  CHECK(DecodeHead(bytes).status().IsCorruption());
}

TEST_CASE("a manifest round-trips through its record", "[persistence]") {
  Manifest m;
  m.store_id = 5;
  m.version = 3;
  m.base_version = 2;
  m.writer_id = 8;
  m.created_unix_ms = 1700000000000;
  m.page_size = 4096;
  m.page_count = 3;
  m.packs = {{{3, 8, 0}, 8192}, {{2, 8, 1}, 4096}};
  m.pages = {{0, 0, {1, 2}}, {1, 0, {3, 4}}, {0, 4096, {5, 6}}};
  std::vector<std::uint8_t> rec = EncodeManifest(m);
  CHECK(rec.size() % 8 == 0);
  Manifest d = DecodeManifest(rec).value();
  CHECK(d.version == 3);
  CHECK(d.created_unix_ms == 1700000000000);
  REQUIRE(d.pages.size() == 3);
  CHECK(d.pages[2].offset == 4096);
  CHECK(d.pages[2].hash == Hash128{5, 6});
  CHECK(d.packs[1].id == PackId{2, 8, 1});

  SECTION("a page outside its pack is Corruption even with a valid checksum") {
    m.pages[1].offset = 4096;
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
  SECTION("a blank page entry (format 3) decodes; in a format 2 manifest it is Corruption") {
    m.pages[1] = {kBlankPage, 7, {3, 4}};
    Result<Manifest> blank = DecodeManifest(EncodeManifest(m));
    REQUIRE(blank.ok());
    CHECK(blank->pages[1].pack == kBlankPage);
    CHECK(blank->pages[1].offset == 7);
    m.format_version = 2;
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
  SECTION("page count must match the page entries") {
    m.page_count = 4;
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
  SECTION("a misaligned buffer still decodes") {
    std::vector<std::uint8_t> shifted(rec.size() + 1);
    std::copy(rec.begin(), rec.end(), shifted.begin() + 1);
    CHECK(DecodeManifest(std::span(shifted).subspan(1)).ok());
  }
}

TEST_CASE("a delta manifest round-trips and its changes are checked", "[persistence]") {
  Manifest m;
  m.store_id = 5;
  m.version = 9;
  m.base_version = 8;
  m.page_size = 4096;
  m.page_count = 40;
  m.packs = {{{9, 8, 0}, 8192}, {{2, 8, 1}, 4096}};
  m.delta_base = 7;
  m.delta_base_check = 0xfeed;
  m.changes = {{3, {0, 4096, {1, 2}}}, {39, {1, 0, {3, 4}}}};
  Manifest d = DecodeManifest(EncodeManifest(m)).value();
  CHECK(d.is_delta());
  CHECK(d.delta_base == 7);
  CHECK(d.delta_base_check == 0xfeed);
  CHECK(d.pages.empty());
  REQUIRE(d.changes.size() == 2);
  CHECK(d.changes[1].page == 39);
  CHECK(d.changes[1].location.hash == Hash128{3, 4});

  SECTION("changes must ascend") {
    std::swap(m.changes[0], m.changes[1]);
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
  SECTION("a change beyond the page count") {
    m.changes[1].page = 40;
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
  SECTION("a change outside its pack") {
    m.changes[1].location.offset = 4096;
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
  SECTION("the base must be older") {
    m.delta_base = 9;
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
  SECTION("format 1 has no deltas") {
    m.format_version = 1;
    CHECK(DecodeManifest(EncodeManifest(m)).status().IsCorruption());
  }
}

}  // namespace
}  // namespace keepstate::persistence
