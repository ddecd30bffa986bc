// Txn: read-your-writes, atomic commit, abort leaves no trace, single writer.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "keepstate/engine/store.h"

using namespace keepstate;
using namespace keepstate::engine;

namespace {

std::vector<std::pair<std::string, std::string>> All(const Txn& t) {
  std::vector<std::pair<std::string, std::string>> out;
  t.Scan({}, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  return out;
}

}  // namespace

TEST_CASE("a transaction reads its own writes, including scans", "[engine]") {
  auto store = Store::Create().value();
  REQUIRE(store->Put("a", "1").ok());
  REQUIRE(store->Put("b", "2").ok());
  REQUIRE(store->Put("c", "3").ok());
  auto txn = store->BeginWrite().value();
  REQUIRE(txn.Put("b", "20").ok());
  REQUIRE(txn.Put("d", "4").ok());
  CHECK(txn.Delete("a").value() == true);
  CHECK(txn.Delete("zz").value() == false);
  std::string v;
  REQUIRE(txn.Get("b", &v).ok());
  CHECK(v == "20");
  CHECK(txn.Get("a", &v).IsNotFound());
  // Outside the transaction nothing changed yet.
  REQUIRE(store->Get("b", &v).ok());
  CHECK(v == "2");
  CHECK(All(txn) == std::vector<std::pair<std::string, std::string>>{
                        {"b", "20"}, {"c", "3"}, {"d", "4"}});
  ScanOptions rev;
  rev.reverse = true;
  rev.limit = 2;
  std::vector<std::string> keys;
  txn.Scan(rev, [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  });
  CHECK(keys == std::vector<std::string>{"d", "c"});
  REQUIRE(txn.Commit().ok());
  REQUIRE(store->Get("b", &v).ok());
  CHECK(v == "20");
  CHECK_FALSE(store->Contains("a"));
  CHECK(store->Count() == 3);
}

TEST_CASE("abort leaves the tree's bytes and dirty bits exactly as before", "[engine]") {
  auto store = Store::Create().value();
  for (int i = 0; i < 3000; ++i) REQUIRE(store->Put("k" + std::to_string(i), "v").ok());
  store->arena().ClearAllDirty();
  std::vector<std::uint8_t> before(store->arena().bytes().begin(), store->arena().bytes().end());
  {
    auto txn = store->BeginWrite().value();
    for (int i = 0; i < 5000; ++i) REQUIRE(txn.Put("n" + std::to_string(i), std::string(100, 'x')).ok());
    for (int i = 0; i < 3000; i += 3) REQUIRE(txn.Delete("k" + std::to_string(i)).ok());
    txn.Abort();
    CHECK_FALSE(txn.open());
  }
  {
    auto txn = store->BeginWrite().value();
    REQUIRE(txn.Put("dropped", "x").ok());
    // Destroyed without Commit: aborted.
  }
  CHECK(store->arena().bytes().size() == before.size());
  CHECK(std::memcmp(store->arena().bytes().data(), before.data(), before.size()) == 0);
  CHECK(store->arena().DirtyPages().empty());
  CHECK_FALSE(store->write_open());
}

TEST_CASE("only one write transaction at a time — plain writes are refused meanwhile", "[engine]") {
  auto store = Store::Create().value();
  auto txn = store->BeginWrite().value();
  CHECK(store->BeginWrite().status().code() == Code::kBusy);
  CHECK(store->Put("x", "y").code() == Code::kBusy);
  CHECK(store->Delete("x").status().code() == Code::kBusy);
  CHECK_THAT(store->Put("x", "y").message(), Catch::Contains("must not suspend"));
  REQUIRE(txn.Commit().ok());
  CHECK(store->Put("x", "y").ok());
  CHECK(txn.Put("a", "b").code() == Code::kClosed);
  CHECK(txn.Commit().code() == Code::kClosed);
}

TEST_CASE("transaction limits are invalid-argument, not crashes", "[engine]") {
  auto store = Store::Create().value();
  auto txn = store->BeginWrite().value();
  CHECK(txn.Put("", "v").code() == Code::kInvalidArgument);
  CHECK(txn.Put(std::string(1025, 'k'), "v").code() == Code::kInvalidArgument);
  CHECK(txn.Put("k", std::string(kMaxValueSize + 1, 'v')).code() == Code::kInvalidArgument);
  CHECK(txn.Delete("").status().code() == Code::kInvalidArgument);
  REQUIRE(txn.Put("ok", "v").ok());
  REQUIRE(txn.Commit().ok());
  CHECK(store->Count() == 1);
}

TEST_CASE("large transactions apply the newest write per key", "[engine]") {
  auto store = Store::Create().value();
  auto txn = store->BeginWrite().value();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(txn.Put("k" + std::to_string(i), std::to_string(round * 1000 + i)).ok());
    }
  }
  for (int i = 0; i < 1000; i += 10) REQUIRE(txn.Delete("k" + std::to_string(i)).value());
  std::string v;
  REQUIRE(txn.Get("k5", &v).ok());
  CHECK(v == "2005");
  REQUIRE(txn.Commit().ok());
  CHECK(store->Count() == 900);
  REQUIRE(store->Get("k999", &v).ok());
  CHECK(v == "2999");
  CHECK(store->tree().Check().ok());
}

TEST_CASE("a closed store refuses every call", "[engine]") {
  auto store = Store::Create().value();
  REQUIRE(store->Put("a", "b").ok());
  store->Close();
  std::string v;
  CHECK(store->Get("a", &v).code() == Code::kClosed);
  CHECK(store->Put("a", "b").code() == Code::kClosed);
  CHECK(store->BeginWrite().status().code() == Code::kClosed);
}

TEST_CASE("a store rebuilt from page images holds every key and value", "[engine]") {
  auto store = Store::Create().value();
  for (int i = 0; i < 20000; ++i) {
    REQUIRE(store->Put("key" + std::to_string(i), std::string(i % 97, static_cast<char>(i))).ok());
  }
  REQUIRE(store->Put("big", std::string(200000, 'b')).ok());
  for (int i = 0; i < 20000; i += 5) REQUIRE(store->Delete("key" + std::to_string(i)).value());
  std::vector<std::uint8_t> image(store->arena().bytes().begin(), store->arena().bytes().end());
  auto arena = Arena::FromImage(std::move(image), store->arena().page_size()).value();
  auto copy = Store::FromArena(std::move(arena), /*verify=*/true).value();
  CHECK(copy->Count() == store->Count());
  std::vector<std::pair<std::string, std::string>> a, b;
  store->Scan({}, [&](std::string_view k, std::string_view v) {
    a.emplace_back(k, v);
    return true;
  });
  copy->Scan({}, [&](std::string_view k, std::string_view v) {
    b.emplace_back(k, v);
    return true;
  });
  CHECK(a == b);
}

TEST_CASE("GetMany matches Get, in the store and in a transaction", "[engine]") {
  auto store = Store::Create().value();
  for (int i = 0; i < 5000; ++i) REQUIRE(store->Put("k" + std::to_string(i), std::to_string(i)).ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back("k" + std::to_string(i * 131 % 6000));  // some absent
  keys.push_back("");  // invalid
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<std::string> values(keys.size());
  std::vector<Status> statuses(keys.size());
  store->GetMany(views.data(), views.size(), values.data(), statuses.data());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::string v;
    Status s = keys[i].empty() ? Status::InvalidArgument("") : store->Get(keys[i], &v);
    INFO(keys[i]);
    CHECK(statuses[i].code() == s.code());
    if (s.ok()) CHECK(values[i] == v);
  }
  auto txn = store->BeginWrite().value();
  REQUIRE(txn.Put("k1", "changed").ok());
  REQUIRE(txn.Delete("k2").value());
  const std::string_view two[3] = {"k1", "k2", "k3"};
  std::string out[3];
  Status st[3];
  txn.GetMany(two, 3, out, st);
  CHECK(out[0] == "changed");
  CHECK(st[1].IsNotFound());
  CHECK(out[2] == "3");
  // Hints from GetMany make same-size puts in place; the result is the same.
  REQUIRE(txn.Put("k3", "x").ok());
  REQUIRE(txn.Commit().ok());
  std::string v;
  REQUIRE(store->Get("k3", &v).ok());
  CHECK(v == "x");
  CHECK(store->tree().Check().ok());
}

TEST_CASE("reads through Locate's hints match reads without them, and stale or wrong hints are not used", "[engine]") {
  auto store = Store::Create().value();
  for (int i = 0; i < 5000; ++i) REQUIRE(store->Put("k" + std::to_string(i), std::to_string(i)).ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back("k" + std::to_string(i * 131 % 6000));  // some absent
  keys.push_back("");                      // invalid
  keys.push_back(std::string(2000, 'k'));  // invalid
  std::vector<std::string_view> views(keys.begin(), keys.end());
  std::vector<LeafHint> hints(keys.size());
  store->Locate(views.data(), views.size(), hints.data());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    INFO(keys[i].substr(0, 10));
    CHECK(hints[i].valid() == store->Contains(keys[i]));
  }
  auto read_all = [&](const LeafHint* h) {
    std::vector<std::string> values(keys.size());
    std::vector<Status> statuses(keys.size());
    auto txn = store->BeginWrite().value();
    txn.GetMany(views.data(), views.size(), values.data(), statuses.data(), h);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      out.push_back(std::string(CodeName(statuses[i].code())) + ":" + (statuses[i].ok() ? values[i] : ""));
    }
    return out;
  };
  const std::vector<std::string> plain = read_all(nullptr);
  CHECK(read_all(hints.data()) == plain);
  // Hints shifted by one point at other keys: each is checked and not used.
  std::vector<LeafHint> wrong(hints.begin() + 1, hints.end());
  wrong.push_back(hints[0]);
  CHECK(read_all(wrong.data()) == plain);
  // After inserts and deletes change the tree's shape the hints are stale;
  // results follow the tree, not the hints.
  for (int i = 0; i < 3000; i += 2) REQUIRE(store->Delete("k" + std::to_string(i)).value());
  for (int i = 5000; i < 6000; ++i) REQUIRE(store->Put("k" + std::to_string(i), "new").ok());
  const std::vector<std::string> now = read_all(nullptr);
  CHECK(now != plain);
  CHECK(read_all(hints.data()) == now);
  // A transaction's own writes win over hints; same-size puts of hinted
  // reads commit in place like any other.
  {
    const std::string_view two[2] = {"k1", "k3"};
    LeafHint two_hints[2];
    store->Locate(two, 2, two_hints);
    REQUIRE((two_hints[0].valid() && two_hints[1].valid()));
    auto txn = store->BeginWrite().value();
    REQUIRE(txn.Put("k3", "mine").ok());
    std::string values[2];
    Status statuses[2];
    txn.GetMany(two, 2, values, statuses, two_hints);
    REQUIRE((statuses[0].ok() && statuses[1].ok()));
    CHECK(values[0] == "1");
    CHECK(values[1] == "mine");
    REQUIRE(txn.Put("k1", "z").ok());
    REQUIRE(txn.Commit().ok());
    std::string v;
    REQUIRE(store->Get("k1", &v).ok());
    CHECK(v == "z");
  }
  CHECK(store->tree().Check().ok());
  // A closed store locates nothing.
  store->Close();
  store->Locate(views.data(), views.size(), hints.data());
  for (const LeafHint& h : hints) CHECK_FALSE(h.valid());
}

TEST_CASE("a commit that runs out of memory applies nothing", "[engine]") {
  for (int writes : {50, 20000}) {  // one reservation, and chunks under the journal
    INFO(writes << " writes");
    auto store = Store::Create().value();
    for (int i = 0; i < 2000; ++i) REQUIRE(store->Put("base" + std::to_string(i), "v").ok());
    store->arena().ClearAllDirty();
    std::vector<std::uint8_t> before(store->arena().bytes().begin(), store->arena().bytes().end());
    store->arena().SetPageLimit(store->arena().page_count() + 3);
    auto txn = store->BeginWrite().value();
    for (int i = 0; i < writes; ++i) REQUIRE(txn.Put("new" + std::to_string(i), std::string(300, 'x')).ok());
    Status s = txn.Commit();
    CHECK(s.code() == Code::kOutOfSpace);
    CHECK_THAT(s.message(), Catch::Contains("page limit"));
    CHECK_FALSE(store->write_open());
    REQUIRE(store->arena().bytes().size() == before.size());
    CHECK(std::memcmp(store->arena().bytes().data(), before.data(), before.size()) == 0);
    CHECK(store->arena().DirtyPages().empty());
    CHECK(store->Count() == 2000);
    // Plain writes fail the same way, atomically.
    CHECK(store->Put("big", std::string(100000, 'b')).code() == Code::kOutOfSpace);
    CHECK(store->tree().Check().ok());
    // Same-size replacements need no pages: they still work at the limit.
    auto update = store->BeginWrite().value();
    std::string v;
    for (int i = 0; i < 2000; ++i) {
      REQUIRE(update.Get("base" + std::to_string(i), &v).ok());
      REQUIRE(update.Put("base" + std::to_string(i), "w").ok());
    }
    REQUIRE(update.Commit().ok());
    REQUIRE(store->Get("base1999", &v).ok());
    CHECK(v == "w");
  }
}

TEST_CASE("large read-modify-write transactions apply every update", "[engine]") {
  auto store = Store::Create().value();
  const int n = 50000;
  for (int i = 0; i < n; ++i) REQUIRE(store->Put("acct" + std::to_string(i), "00000100").ok());
  auto txn = store->BeginWrite().value();
  std::string v;
  for (int i = 0; i < n; i += 2) {
    REQUIRE(txn.Get("acct" + std::to_string(i), &v).ok());
    REQUIRE(txn.Put("acct" + std::to_string(i), "00000099").ok());
    REQUIRE(txn.Put("acct" + std::to_string(i + 1), "00000101").ok());  // blind write
  }
  REQUIRE(txn.Get("acct7", &v).ok());  // read-your-writes through the hash table
  CHECK(v == "00000101");
  REQUIRE(txn.Commit().ok());
  std::int64_t odd = 0, even = 0;
  store->Scan({}, [&](std::string_view k, std::string_view val) {
    (std::stoi(std::string(k.substr(4))) % 2 ? odd : even) += std::stoi(std::string(val));
    return true;
  });
  CHECK(even == 99LL * n / 2);
  CHECK(odd == 101LL * n / 2);
  CHECK(store->tree().Check().ok());
}

TEST_CASE("txn: the schema version is set with the transaction's writes, read-your-writes, dropped on abort") {
  auto created = keepstate::engine::Store::Create();
  REQUIRE(created.ok());
  keepstate::engine::Store& store = **created;
  CHECK(store.schema_version() == 0);
  {
    auto txn = store.BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(txn->SetSchemaVersion(3).ok());
    CHECK(txn->schema_version() == 3);
    CHECK(store.schema_version() == 0);
    CHECK(txn->pending_writes() == 1);
    txn->Abort();
  }
  CHECK(store.schema_version() == 0);
  {
    auto txn = store.BeginWrite();
    REQUIRE(txn.ok());
    REQUIRE(txn->Put("k", "v").ok());
    REQUIRE(txn->SetSchemaVersion(2).ok());
    REQUIRE(txn->Commit().ok());
  }
  CHECK(store.schema_version() == 2);
  CHECK(store.arena().dirty().Test(0));  // the superblock is committed with the pages
}
