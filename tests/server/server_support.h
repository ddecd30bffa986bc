// What the server tests share: the two databases (SQLite in a temporary
// folder; PostgreSQL from KEEPSTATE_TEST_POSTGRES, which scripts/with-postgres
// sets — its tests fail, not skip, without it), unique space names, and the
// ledger's FlatBuffers arguments.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "keepstate/server/space.h"
#include "keepstate/server/space_store.h"
#include "ledger_generated.h"

namespace keepstate::server::testing {

inline std::mt19937_64& Rng() {
  static std::mt19937_64 rng(std::random_device{}());
  return rng;
}

// A name no other test (or test run sharing the database) uses.
inline std::string UniqueName(const char* prefix) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Rng()()));
  return std::string(prefix) + "-" + hex;
}

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / UniqueName("keepstate-server-test")) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::string PostgresConninfo() {
  const char* conninfo = std::getenv("KEEPSTATE_TEST_POSTGRES");
  INFO("KEEPSTATE_TEST_POSTGRES is unset: run the tests under scripts/with-postgres (make test-cxx does)");
  REQUIRE(conninfo != nullptr);
  return conninfo;
}

// The backends, as TEMPLATE_TEST_CASE parameters.
struct Sqlite {
  TempDir dir;
  std::unique_ptr<Database> Open() {
    Result<std::unique_ptr<Database>> db = Database::OpenSqlite(dir.path());
    INFO(db.status().ToString());
    REQUIRE(db.ok());
    return std::move(*db);
  }
  std::vector<std::string> Flags() const { return {"--data", dir.path()}; }
};
struct Postgres {
  std::unique_ptr<Database> Open() {
    Result<std::unique_ptr<Database>> db = Database::OpenPostgres(PostgresConninfo());
    INFO(db.status().ToString());
    REQUIRE(db.ok());
    return std::move(*db);
  }
  std::vector<std::string> Flags() const { return {"--postgres", PostgresConninfo()}; }
};

// The ledger's arguments.
inline std::string Bytes(flatbuffers::FlatBufferBuilder& b) {
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}
inline std::string OpenAccountArgs(std::uint32_t id, std::uint32_t count, std::int64_t balance) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(ledger::CreateOpenAccount(b, id, count, balance));
  return Bytes(b);
}
inline std::string TransferArgs(std::uint32_t from, std::uint32_t to, std::int64_t amount) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(ledger::CreateTransfer(b, from, to, amount));
  return Bytes(b);
}
inline std::string AccountKey(std::uint32_t id) {
  char b[16];
  std::snprintf(b, sizeof b, "acct/%010u", id);
  return b;
}
inline std::int64_t BalanceIn(const std::optional<std::string>& value) {
  REQUIRE(value.has_value());
  return flatbuffers::GetRoot<ledger::Account>(value->data())->balance();
}

inline Mutation M(std::uint64_t id, std::string name, std::string args) {
  return Mutation{id, std::move(name), std::move(args)};
}

}  // namespace keepstate::server::testing
