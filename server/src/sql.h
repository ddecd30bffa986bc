// Sql: the little of a SQL connection the space store needs — run one
// statement with parameters, read its rows — over SQLite and PostgreSQL, so
// that the storage logic (space_store.cc) is written once and each engine
// only marshals. Statements are written with PostgreSQL's `$1` placeholders;
// the SQLite connection binds them as SQLite's numbered `?1` (the same
// numbering).
//
// Rows come back as bytes: a text or blob column as its bytes, an integer
// column as its value (Row::Int), NULL as nullopt.
//
// Thread safety: none (one connection, one thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "keepstate/status.h"

namespace keepstate::server {

// A statement parameter: an integer, text, or a blob (bytes, bound as such).
struct Blob {
  std::span<const std::uint8_t> bytes;
};
using SqlParam = std::variant<std::int64_t, std::string_view, Blob>;

// One statement of ExecAll (its views must outlive the call).
struct SqlStatement {
  std::string text;
  std::vector<SqlParam> params;
};

struct SqlRow {
  // Each column: nullopt for NULL; integers as decimal text.
  std::vector<std::optional<std::string>> columns;
  bool IsNull(std::size_t i) const { return !columns.at(i).has_value(); }
  std::int64_t Int(std::size_t i) const;
  const std::string& Text(std::size_t i) const { return *columns.at(i); }
};

enum class SqlEngine {
  kSqlite,    // one file, BEGIN IMMEDIATE takes the write lock
  kPostgres,  // SELECT ... FOR UPDATE locks the head row
};

class Sql {
 public:
  virtual ~Sql() = default;
  virtual SqlEngine engine() const = 0;
  // The database server's process id for this connection (PostgreSQL's
  // backend pid, which its notifications carry); 0 if there is none.
  virtual int session_pid() const { return 0; }
  // Runs `statement`; appends its rows to *rows if given. Errors: Conflict
  // (the engine reports a serialization failure or a duplicate key: another
  // writer got there first), Busy (SQLite: locked), Internal (anything else,
  // with the engine's message).
  Status Exec(std::string_view statement, std::span<const SqlParam> params = {},
              std::vector<SqlRow>* rows = nullptr) {
    return Run(statement, params, rows);
  }
  // Runs `statements` in order, none after the first that fails; appends
  // the rows of each to *rows if given. PostgreSQL sends them all before
  // reading any answer (libpq's pipeline mode): one round trip instead of
  // one per statement. Errors: as Exec's, of the first that failed.
  virtual Status ExecAll(std::span<const SqlStatement> statements, std::vector<SqlRow>* rows = nullptr) {
    for (const SqlStatement& s : statements) KEEPSTATE_RETURN_IF_ERROR(Exec(s.text, s.params, rows));
    return Status::Ok();
  }
  // The statement that opens a write transaction (SQLite: IMMEDIATE, so the
  // write lock is taken before the head is read).
  virtual const char* begin_statement() const = 0;

 protected:
  // Exec, implemented by each engine.
  virtual Status Run(std::string_view statement, std::span<const SqlParam> params, std::vector<SqlRow>* rows) = 0;
};

// Opens (creating) the SQLite database file `path`: WAL, synchronous=FULL
// (a commit is on disk before it is acknowledged). Errors: Internal.
Result<std::unique_ptr<Sql>> OpenSqlite(const std::string& path);
// Connects to PostgreSQL with `conninfo`. Errors: Internal.
Result<std::unique_ptr<Sql>> OpenPostgres(const std::string& conninfo);

}  // namespace keepstate::server
