// Returning free pages: a store's arena shrinks after deletes (BTree::Shrink,
// run by every Store write), to at most twice its live pages, with every
// entry unchanged and every page accounted for.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>

#include "keepstate/engine/store.h"

using namespace keepstate;
using namespace keepstate::engine;

namespace {

std::uint32_t LivePages(const Arena& a) { return a.page_count() - 1 - a.free_count(); }

std::map<std::string, std::string> Contents(const Store& s) {
  std::map<std::string, std::string> out;
  s.Scan({}, [&](std::string_view k, std::string_view v) {
    out.emplace(k, v);
    return true;
  });
  return out;
}

}  // namespace

TEST_CASE("deleting a large value returns its pages: the arena ends at its live pages", "[engine]") {
  auto s = Store::Create().value();
  REQUIRE(s->Put("a", "1").ok());
  REQUIRE(s->Put("b", "2").ok());
  REQUIRE(s->Put("big", std::string(8u << 20, 'x')).ok());
  CHECK(s->arena().page_count() > 2048);
  REQUIRE(s->Delete("big").value());
  // Superblock and one leaf.
  CHECK(s->arena().page_count() == 2);
  CHECK(s->arena().free_count() == 0);
  CHECK(s->tree().Check().ok());
  CHECK(Contents(*s) == std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}});
}

TEST_CASE("a sparse arena is compacted: live pages move below the live count", "[engine]") {
  // A large value first, then many small entries after it: deleting the
  // large value frees pages below live ones, so only moving them shrinks.
  auto s = Store::Create().value();
  REQUIRE(s->Put("big", std::string(4u << 20, 'x')).ok());
  for (int i = 0; i < 3000; ++i) REQUIRE(s->Put("k" + std::to_string(i), std::string(100, 'v')).ok());
  REQUIRE(s->Put("tail", std::string(300000, 't')).ok());  // an overflow chain above them
  const auto before = Contents(*s);
  const std::uint32_t live_before = LivePages(s->arena());
  Result<Txn> txn = s->BeginWrite();
  REQUIRE(txn.ok());
  REQUIRE(txn->Delete("big").value());
  REQUIRE(txn->Commit().ok());
  auto expected = before;
  expected.erase("big");
  CHECK(Contents(*s) == expected);
  CHECK(s->tree().Check().ok());
  CHECK(s->arena().free_count() == 0);
  CHECK(LivePages(s->arena()) < live_before - 1000);
  CHECK(s->arena().page_count() == LivePages(s->arena()) + 1);
  std::string v;
  REQUIRE(s->Get("tail", &v).ok());
  CHECK(v == std::string(300000, 't'));
}

TEST_CASE("random puts and deletes keep the arena within twice its live pages", "[engine]") {
  const std::uint32_t seed = 1 + static_cast<std::uint32_t>(Catch::rngSeed());
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto s = Store::Create().value();
  std::map<std::string, std::string> model;
  for (int step = 0; step < 3000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 300);
    if (rng() % 3 == 0) {
      CHECK(s->Delete(key).value() == (model.erase(key) == 1));
    } else {
      // Mostly small values, some overflow chains of up to ~40 pages.
      const std::size_t size = rng() % 8 == 0 ? rng() % 160000 : rng() % 200;
      const std::string value(size, static_cast<char>('a' + step % 26));
      REQUIRE(s->Put(key, value).ok());
      model[key] = value;
    }
    const Arena& a = s->arena();
    REQUIRE(a.free_count() <= std::max(LivePages(a), BTree::kShrinkMinFreePages - 1));
    if (step % 100 == 0) {
      REQUIRE(s->tree().Check().ok());
      REQUIRE(Contents(*s) == model);
    }
  }
  CHECK(s->tree().Check().ok());
  CHECK(Contents(*s) == model);
}
