// The SQL storage of spaces (docs/sync.md, "The server"): a Database is one
// SQLite file or one PostgreSQL database holding every space; a SpaceStore
// is one space's persistence::RecordStore over it (tables ks_heads,
// ks_manifests, ks_packs keyed by space and key) plus what sync keeps next
// to the state, committed in the SAME SQL transaction as the records:
//   ks_clients   per (space, client): the last mutation id processed and the
//                identity (token owner) the client is bound to;
//   ks_failures  per (space, client, id): failed mutations, with the version
//                that processed them, kept for the last kFailureVersions;
//   ks_changes   per (space, version): the keys that version changed, kept
//                for the last kChangeVersions; below ks_heads.change_floor a
//                pull cannot be answered with changes (docs/sync.md: `full`).
//
// A commit (SpaceStore::Commit) is one SQL transaction: lock and read the
// head row (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE), run
// persistence::CheckStoredHead (the browser's rule), write the records, the
// log, COMMIT. Nothing is acknowledged before COMMIT returned (SQLite: WAL
// with synchronous=FULL). The writes and the COMMIT go as one ExecAll: on
// PostgreSQL one round trip after the head's.
//
// Thread safety: none (one connection, one thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/persistence/record_store.h"
#include "keepstate/status.h"

namespace keepstate::server {

class Sql;            // src/sql.h
struct SqlStatement;  // src/sql.h

// A failed mutation as kept and reported (docs/sync.md: `failed`).
struct Failure {
  std::string client;
  std::uint64_t id = 0;
  std::string code;     // a keepstate::CodeName ("invalid-argument", ...)
  std::string message;  // valid UTF-8, bounded (Space sanitizes it)
  friend bool operator==(const Failure&, const Failure&) = default;
};

struct ClientRecord {
  std::uint64_t last_id = 0;  // the highest mutation id processed
  std::string identity;       // the identity of the token that first pushed for it
};

// What one commit writes besides the records.
struct CommitLog {
  std::map<std::string, ClientRecord> clients;  // clients whose last id (or binding) changed
  std::vector<Failure> failures;
  std::vector<std::string> changed_keys;  // ascending, unique
};

// How much history a space keeps.
struct Retention {
  std::uint64_t change_versions = 1000;   // versions whose changed keys are kept
  std::size_t max_changed_keys = 10000;   // a version changing more raises the floor instead
  std::uint64_t failure_versions = 1000;  // versions whose failures are kept
};

class SpaceStore;

class Database {
 public:
  // `dir`/keepstate.sqlite3, created with the schema if needed.
  // Errors: Internal (cannot open, not a database).
  static Result<std::unique_ptr<Database>> OpenSqlite(const std::string& dir);
  // PostgreSQL at `conninfo` (libpq syntax), the schema created if needed.
  // Errors: Internal.
  static Result<std::unique_ptr<Database>> OpenPostgres(const std::string& conninfo);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  bool postgres() const;
  // PostgreSQL's backend pid of the connection that commits (0: SQLite):
  // the notifications of this process's own commits carry it.
  int session_pid() const;
  // The store of `space` (REQUIRES: a valid space name, docs/sync.md; the
  // Database outlives the store). Errors: as the SQL engine's.
  Result<std::unique_ptr<SpaceStore>> Open(std::string space, Retention retention = {});

 private:
  explicit Database(std::unique_ptr<Sql> sql);
  Status CreateSchema();
  std::unique_ptr<Sql> sql_;
};

class SpaceStore final : public persistence::RecordStore {
 public:
  SpaceStore(Sql* sql, std::string space, Retention retention);

  const std::string& space() const { return space_; }

  // RecordStore. Apply commits the batch with an empty log.
  Result<std::vector<std::uint8_t>> Get(persistence::RecordKind kind, std::string_view key) override;
  Result<std::vector<std::string>> List(persistence::RecordKind kind) override;
  Status Apply(const persistence::WriteBatch& batch) override;

  // The batch and the log in one SQL transaction (see the file comment).
  // The version committed is the batch's head's. Errors: Conflict (the
  // stored head is not the batch's expected one: nothing written),
  // Unsupported (a newer format's head), InvalidArgument (a record key the
  // tables cannot hold), and the engine's errors (nothing written).
  Status Commit(const persistence::WriteBatch& batch, const CommitLog& log);

  // Reads between BeginRead and EndRead see one committed state (a restore
  // and the clients it goes with), whatever other processes commit
  // meanwhile. Errors: the engine's.
  Status BeginRead();
  Status EndRead();

  // The version of the stored head (0: none), as last committed by anyone.
  Result<std::uint64_t> StoredVersion();
  // Every client of the space.
  Result<std::map<std::string, ClientRecord>> Clients();
  // The failures of `client` with from_id <= id <= to_id, ascending.
  Result<std::vector<Failure>> FailuresByIds(std::string_view client, std::uint64_t from_id, std::uint64_t to_id);
  // The failures of `client` processed by versions above `since`, ascending.
  Result<std::vector<Failure>> FailuresSince(std::string_view client, std::uint64_t since);
  // The keys changed by versions in (since, upto], ascending and unique;
  // nullopt if they are not known (since is 0 or below the floor, or there
  // are more than max_keys).
  Result<std::optional<std::vector<std::string>>> ChangedKeys(std::uint64_t since, std::uint64_t upto,
                                                              std::size_t max_keys);

 private:
  // The statements that write the batch's records, then the log's, appended
  // to *out. Errors: InvalidArgument (a head record not named head).
  Status WriteRecords(const persistence::WriteBatch& batch, std::vector<SqlStatement>* out);
  void WriteLog(const CommitLog& log, std::uint64_t version, std::uint64_t floor, std::vector<SqlStatement>* out);

  Sql* sql_;
  std::string space_;
  Retention retention_;
};

}  // namespace keepstate::server
