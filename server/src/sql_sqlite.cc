// Sql over SQLite (libsqlite3): prepared statements cached by text, since
// the store runs the same few statements for every commit.
#include <sqlite3.h>

#include <map>
#include <string>

#include "sql.h"

namespace keepstate::server {
namespace {

class SqliteSql final : public Sql {
 public:
  explicit SqliteSql(sqlite3* db) : db_(db) {}
  ~SqliteSql() override {
    for (auto& [text, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }
  SqlEngine engine() const override { return SqlEngine::kSqlite; }

  const char* begin_statement() const override { return "BEGIN IMMEDIATE"; }

  Status Run(std::string_view statement, std::span<const SqlParam> params, std::vector<SqlRow>* rows) override {
    KEEPSTATE_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(statement));
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int n = static_cast<int>(i + 1);
      int rc = SQLITE_OK;
      if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        rc = sqlite3_bind_int64(stmt, n, *v);
      } else if (const auto* t = std::get_if<std::string_view>(&params[i])) {
        rc = sqlite3_bind_text64(stmt, n, t->data(), t->size(), SQLITE_STATIC, SQLITE_UTF8);
      } else {
        const Blob& b = std::get<Blob>(params[i]);
        // A zero-length blob must not be NULL: bind a non-null pointer.
        static const std::uint8_t kEmpty = 0;
        rc = sqlite3_bind_blob64(stmt, n, b.bytes.empty() ? &kEmpty : b.bytes.data(), b.bytes.size(), SQLITE_STATIC);
      }
      if (rc != SQLITE_OK) return Error("bind", rc);
    }
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        Status s = Error(statement, rc);
        sqlite3_reset(stmt);
        return s;
      }
      if (rows == nullptr) continue;
      SqlRow& row = rows->emplace_back();
      const int n = sqlite3_column_count(stmt);
      for (int c = 0; c < n; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_NULL:
            row.columns.emplace_back(std::nullopt);
            break;
          case SQLITE_INTEGER:
            row.columns.emplace_back(std::to_string(sqlite3_column_int64(stmt, c)));
            break;
          default: {
            const void* p = sqlite3_column_blob(stmt, c);
            const int size = sqlite3_column_bytes(stmt, c);
            row.columns.emplace_back(p == nullptr ? std::string() : std::string(static_cast<const char*>(p), size));
          }
        }
      }
    }
    sqlite3_reset(stmt);
    return Status::Ok();
  }

 private:
  Result<sqlite3_stmt*> Prepare(std::string_view statement) {
    auto it = cache_.find(statement);
    if (it != cache_.end()) return it->second;
    // PostgreSQL's $N placeholders as SQLite's ?N.
    std::string text(statement);
    for (char& c : text) {
      if (c == '$') c = '?';
    }
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()), SQLITE_PREPARE_PERSISTENT,
                                      &stmt, nullptr);
    if (rc != SQLITE_OK) return Error(statement, rc);
    cache_.emplace(std::string(statement), stmt);
    return stmt;
  }

  Status Error(std::string_view what, int rc) {
    std::string message = "sqlite: " + std::string(what.substr(0, 80)) + ": " + sqlite3_errmsg(db_);
    const int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::Busy(std::move(message));
    if (primary == SQLITE_CONSTRAINT) return Status::Conflict(std::move(message));
    if (primary == SQLITE_FULL) return Status::OutOfSpace(std::move(message));
    return Status::Internal(std::move(message));
  }

  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*, std::less<>> cache_;
};

}  // namespace

Result<std::unique_ptr<Sql>> OpenSqlite(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "sqlite: cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return Status::Internal(std::move(message));
  }
  // Another process (a second server by mistake, a backup) may hold the
  // lock briefly: wait for it rather than fail the commit.
  sqlite3_busy_timeout(db, 5000);
  auto sql = std::make_unique<SqliteSql>(db);
  // WAL: readers never block the writer; synchronous=FULL: the WAL is
  // synced at every commit, so an acknowledged push survives a power cut.
  std::vector<SqlRow> mode;
  KEEPSTATE_RETURN_IF_ERROR(sql->Exec("PRAGMA journal_mode=WAL", {}, &mode));
  if (mode.empty() || mode[0].IsNull(0) || mode[0].Text(0) != "wal") {
    return Status::Internal("sqlite: " + path + " cannot use WAL journaling");
  }
  KEEPSTATE_RETURN_IF_ERROR(sql->Exec("PRAGMA synchronous=FULL"));
  return std::unique_ptr<Sql>(std::move(sql));
}

}  // namespace keepstate::server
