#include "keepstate/server/space_store.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>

#include "keepstate/persistence/format.h"
#include "keepstate/persistence/head_check.h"
#include "sql.h"

namespace keepstate::server {

using persistence::RecordKind;

std::int64_t SqlRow::Int(std::size_t i) const {
  const std::optional<std::string>& c = columns.at(i);
  std::int64_t v = 0;
  if (c) std::from_chars(c->data(), c->data() + c->size(), v);
  return v;
}

namespace {

// Versions and ids are u64 in keepstate and BIGINT in SQL; neither goes
// near 2^63 (a commit per microsecond for 290,000 years).
std::int64_t I(std::uint64_t v) { return static_cast<std::int64_t>(v); }

Blob BlobOf(std::string_view s) { return Blob{{reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}}; }

// The table of a kind that is not the head.
const char* TableOf(RecordKind kind) { return kind == RecordKind::kManifest ? "ks_manifests" : "ks_packs"; }

// Rows per multi-row INSERT of changed keys: one statement instead of one
// round trip per key (PostgreSQL), well under both engines' parameter limits.
constexpr std::size_t kKeysPerInsert = 500;

// Changes below the floor are deleted when the floor passes a multiple of
// this, not at every commit: rows below the floor are never read, and one
// delete per 64 commits writes far fewer pages than 64.
constexpr std::uint64_t kChangesDeleteStride = 64;

}  // namespace

// --- Database ----------------------------------------------------------------

Database::Database(std::unique_ptr<Sql> sql) : sql_(std::move(sql)) {}
Database::~Database() = default;

bool Database::postgres() const { return sql_->engine() == SqlEngine::kPostgres; }
int Database::session_pid() const { return sql_->session_pid(); }

Result<std::unique_ptr<Database>> Database::OpenSqlite(const std::string& dir) {
  KEEPSTATE_ASSIGN_OR_RETURN(std::unique_ptr<Sql> sql, server::OpenSqlite(dir + "/keepstate.sqlite3"));
  std::unique_ptr<Database> db(new Database(std::move(sql)));
  KEEPSTATE_RETURN_IF_ERROR(db->CreateSchema());
  return db;
}

Result<std::unique_ptr<Database>> Database::OpenPostgres(const std::string& conninfo) {
  KEEPSTATE_ASSIGN_OR_RETURN(std::unique_ptr<Sql> sql, server::OpenPostgres(conninfo));
  std::unique_ptr<Database> db(new Database(std::move(sql)));
  KEEPSTATE_RETURN_IF_ERROR(db->CreateSchema());
  return db;
}

Status Database::CreateSchema() {
  const std::string blob = postgres() ? "BYTEA" : "BLOB";
  // SQLite: the tables of small rows, written by every commit, are their
  // primary key's B-tree (not a rowid table plus an index): a commit
  // rewrites half the pages for them. Files made before keep their tables.
  const std::string clustered = postgres() ? "" : " WITHOUT ROWID";
  const std::string statements[] = {
      // The head row exists from a space's first open on (bytes NULL: no
      // head), so that a commit always has a row to lock.
      "CREATE TABLE IF NOT EXISTS ks_heads (space TEXT PRIMARY KEY, bytes " + blob +
          ", version BIGINT NOT NULL DEFAULT 0, change_floor BIGINT NOT NULL DEFAULT 0)" + clustered,
      "CREATE TABLE IF NOT EXISTS ks_manifests (space TEXT NOT NULL, key TEXT NOT NULL, bytes " + blob +
          " NOT NULL, PRIMARY KEY (space, key))" + clustered,
      "CREATE TABLE IF NOT EXISTS ks_packs (space TEXT NOT NULL, key TEXT NOT NULL, bytes " + blob +
          " NOT NULL, PRIMARY KEY (space, key))",
      "CREATE TABLE IF NOT EXISTS ks_clients (space TEXT NOT NULL, client TEXT NOT NULL, last_id BIGINT NOT NULL, "
      "identity TEXT NOT NULL, PRIMARY KEY (space, client))" + clustered,
      "CREATE TABLE IF NOT EXISTS ks_failures (space TEXT NOT NULL, client TEXT NOT NULL, id BIGINT NOT NULL, "
      "version BIGINT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (space, client, id))",
      "CREATE INDEX IF NOT EXISTS ks_failures_by_version ON ks_failures (space, version)",
      "CREATE TABLE IF NOT EXISTS ks_changes (space TEXT NOT NULL, version BIGINT NOT NULL, key " + blob +
          " NOT NULL, PRIMARY KEY (space, version, key))" + clustered,
  };
  // PostgreSQL: processes starting together would race on CREATE ... IF NOT
  // EXISTS (it is not atomic there); one at a time, under an advisory lock.
  if (postgres()) KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT pg_advisory_lock(4242001)"));
  Status created = Status::Ok();
  for (const std::string& s : statements) {
    created = sql_->Exec(s);
    if (!created.ok()) break;
  }
  // PostgreSQL: records are stored as they are, not compressed. Packs are
  // pages of a state (often random bytes): compressing each on its way in
  // cost a commit more server CPU than anything else it did.
  for (const char* table : {"ks_manifests", "ks_packs"}) {
    if (!created.ok() || !postgres()) break;
    created = sql_->Exec(std::string("ALTER TABLE ") + table + " ALTER COLUMN bytes SET STORAGE EXTERNAL");
  }
  if (postgres()) KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT pg_advisory_unlock(4242001)"));
  return created;
}

Result<std::unique_ptr<SpaceStore>> Database::Open(std::string space, Retention retention) {
  const SqlParam p[] = {std::string_view(space)};
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("INSERT INTO ks_heads (space) VALUES ($1) ON CONFLICT DO NOTHING", p));
  return std::make_unique<SpaceStore>(sql_.get(), std::move(space), retention);
}

// --- SpaceStore --------------------------------------------------------------

SpaceStore::SpaceStore(Sql* sql, std::string space, Retention retention)
    : sql_(sql), space_(std::move(space)), retention_(retention) {}

Result<std::vector<std::uint8_t>> SpaceStore::Get(RecordKind kind, std::string_view key) {
  std::vector<SqlRow> rows;
  if (kind == RecordKind::kHead) {
    if (key != persistence::kHeadKey) return Status::NotFound("no head record named " + std::string(key));
    const SqlParam p[] = {std::string_view(space_)};
    KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT bytes FROM ks_heads WHERE space = $1", p, &rows));
  } else {
    const SqlParam p[] = {std::string_view(space_), key};
    KEEPSTATE_RETURN_IF_ERROR(
        sql_->Exec(std::string("SELECT bytes FROM ") + TableOf(kind) + " WHERE space = $1 AND key = $2", p, &rows));
  }
  if (rows.empty() || rows[0].IsNull(0)) {
    return Status::NotFound(std::string(persistence::RecordKindName(kind)) + " record " + std::string(key) +
                            " of space " + space_);
  }
  const std::string& b = rows[0].Text(0);
  return std::vector<std::uint8_t>(b.begin(), b.end());
}

Result<std::vector<std::string>> SpaceStore::List(RecordKind kind) {
  std::vector<SqlRow> rows;
  const SqlParam p[] = {std::string_view(space_)};
  std::vector<std::string> keys;
  if (kind == RecordKind::kHead) {
    KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT bytes IS NOT NULL FROM ks_heads WHERE space = $1", p, &rows));
    // SQLite answers an integer, PostgreSQL a boolean (one byte, binary).
    if (!rows.empty() && !rows[0].IsNull(0) && rows[0].Text(0) != "0" && rows[0].Text(0) != std::string(1, '\0')) {
      keys.emplace_back(persistence::kHeadKey);
    }
    return keys;
  }
  // ORDER BY key: both engines compare these ASCII hex keys bytewise
  // (PostgreSQL with COLLATE "C", whatever the database's collation).
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec(std::string("SELECT key FROM ") + TableOf(kind) + " WHERE space = $1 ORDER BY key" +
                                           (sql_->engine() == SqlEngine::kPostgres ? " COLLATE \"C\"" : ""),
                                       p, &rows));
  for (SqlRow& r : rows) keys.push_back(std::move(*r.columns[0]));
  return keys;
}

Status SpaceStore::Apply(const persistence::WriteBatch& batch) { return Commit(batch, {}); }

Status SpaceStore::Commit(const persistence::WriteBatch& batch, const CommitLog& log) {
  Status s = [&]() -> Status {
    std::vector<SqlRow> rows;
    // Open and lock the head: one round trip on PostgreSQL, as the writes
    // and the COMMIT below are another.
    const SqlStatement head[] = {
        {sql_->begin_statement(), {}},
        {sql_->engine() == SqlEngine::kPostgres
             ? "SELECT bytes, change_floor FROM ks_heads WHERE space = $1 FOR UPDATE"
             : "SELECT bytes, change_floor FROM ks_heads WHERE space = $1",
         {std::string_view(space_)}}};
    KEEPSTATE_RETURN_IF_ERROR(sql_->ExecAll(head, &rows));
    if (rows.empty()) return Status::Internal("space " + space_ + " has no head row (not opened through Database)");
    persistence::HeadBytes stored;
    if (!rows[0].IsNull(0)) {
      const std::string& b = rows[0].Text(0);
      stored = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
    }
    KEEPSTATE_RETURN_IF_ERROR(persistence::CheckStoredHead(batch, stored));
    std::uint64_t version = 0;
    for (const persistence::Record& r : batch.puts) {
      if (r.kind == RecordKind::kHead) version = persistence::ClaimedHeadVersion(r.bytes);
    }
    std::vector<SqlStatement> writes;
    KEEPSTATE_RETURN_IF_ERROR(WriteRecords(batch, &writes));
    if (version != 0) WriteLog(log, version, static_cast<std::uint64_t>(rows[0].Int(1)), &writes);
    if (sql_->engine() == SqlEngine::kPostgres) {
      // Delivered at COMMIT to every other process listening (docs/sync.md).
      writes.push_back({"SELECT pg_notify('keepstate_space', $1)", {std::string_view(space_)}});
    }
    writes.push_back({"COMMIT", {}});
    return sql_->ExecAll(writes);
  }();
  if (!s.ok()) sql_->Exec("ROLLBACK").IgnoreError();  // nothing of the batch or the log lands
  return s;
}

Status SpaceStore::WriteRecords(const persistence::WriteBatch& batch, std::vector<SqlStatement>* out) {
  const std::string_view space(space_);
  if (batch.clear_first) {
    out->push_back({"DELETE FROM ks_manifests WHERE space = $1", {space}});
    out->push_back({"DELETE FROM ks_packs WHERE space = $1", {space}});
    out->push_back({"UPDATE ks_heads SET bytes = NULL WHERE space = $1", {space}});
  }
  for (const persistence::RecordKey& d : batch.deletes) {
    if (d.kind == RecordKind::kHead) {
      out->push_back({"UPDATE ks_heads SET bytes = NULL WHERE space = $1", {space}});
    } else {
      out->push_back({std::string("DELETE FROM ") + TableOf(d.kind) + " WHERE space = $1 AND key = $2",
                      {space, std::string_view(d.key)}});
    }
  }
  for (const persistence::Record& r : batch.puts) {
    if (r.kind == RecordKind::kHead) {
      if (r.key != persistence::kHeadKey) return Status::InvalidArgument("a head record must be named head");
      out->push_back({"UPDATE ks_heads SET bytes = $2 WHERE space = $1", {space, Blob{r.bytes}}});
    } else {
      out->push_back({std::string("INSERT INTO ") + TableOf(r.kind) +
                          " (space, key, bytes) VALUES ($1, $2, $3) "
                          "ON CONFLICT (space, key) DO UPDATE SET bytes = excluded.bytes",
                      {space, std::string_view(r.key), Blob{r.bytes}}});
    }
  }
  return Status::Ok();
}

void SpaceStore::WriteLog(const CommitLog& log, std::uint64_t version, std::uint64_t floor,
                          std::vector<SqlStatement>* out) {
  const std::string_view space(space_);
  for (const auto& [client, record] : log.clients) {
    out->push_back({"INSERT INTO ks_clients (space, client, last_id, identity) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (space, client) DO UPDATE SET last_id = excluded.last_id, "
                    "identity = excluded.identity",
                    {space, std::string_view(client), I(record.last_id), std::string_view(record.identity)}});
  }
  for (const Failure& f : log.failures) {
    out->push_back({"INSERT INTO ks_failures (space, client, id, version, code, message) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    {space, std::string_view(f.client), I(f.id), I(version), std::string_view(f.code),
                     std::string_view(f.message)}});
  }
  if (version > retention_.failure_versions) {
    out->push_back({"DELETE FROM ks_failures WHERE space = $1 AND version <= $2",
                    {space, I(version - retention_.failure_versions)}});
  }
  // Changes: versions above the floor have theirs stored. A version that
  // changed too many keys raises the floor to itself (pulls from before it
  // download the snapshot); the window raises it as versions go by.
  std::uint64_t new_floor = floor;
  if (log.changed_keys.size() > retention_.max_changed_keys) {
    new_floor = version;
  } else {
    for (std::size_t at = 0; at < log.changed_keys.size(); at += kKeysPerInsert) {
      const std::size_t n = std::min(kKeysPerInsert, log.changed_keys.size() - at);
      SqlStatement& insert = out->emplace_back();
      insert.text = "INSERT INTO ks_changes (space, version, key) VALUES ";
      insert.params = {space, I(version)};
      for (std::size_t i = 0; i < n; ++i) {
        insert.text += (i ? ", ($1, $2, $" : "($1, $2, $") + std::to_string(i + 3) + ")";
        insert.params.push_back(BlobOf(log.changed_keys[at + i]));
      }
      insert.text += " ON CONFLICT DO NOTHING";
    }
  }
  if (version > retention_.change_versions) new_floor = std::max(new_floor, version - retention_.change_versions);
  // Invariant: no change is stored at or below the floor rounded down to the
  // stride, so the delete's index scan starts there, not at the deleted
  // rows that wait for VACUUM (PostgreSQL).
  const std::uint64_t deleted = floor / kChangesDeleteStride * kChangesDeleteStride;
  const std::uint64_t to_delete = new_floor / kChangesDeleteStride * kChangesDeleteStride;
  if (to_delete > deleted) {
    out->push_back({"DELETE FROM ks_changes WHERE space = $1 AND version > $2 AND version <= $3",
                    {space, I(deleted), I(to_delete)}});
  }
  out->push_back(
      {"UPDATE ks_heads SET version = $2, change_floor = $3 WHERE space = $1", {space, I(version), I(new_floor)}});
}

Status SpaceStore::BeginRead() {
  // SQLite in WAL mode: a read transaction sees the database as of its
  // first read. PostgreSQL: REPEATABLE READ, one snapshot for all of it.
  return sql_->Exec(sql_->engine() == SqlEngine::kPostgres ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                                           : "BEGIN");
}

Status SpaceStore::EndRead() { return sql_->Exec("COMMIT"); }

Result<std::uint64_t> SpaceStore::StoredVersion() {
  std::vector<SqlRow> rows;
  const SqlParam p[] = {std::string_view(space_)};
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT version FROM ks_heads WHERE space = $1", p, &rows));
  return rows.empty() ? 0 : static_cast<std::uint64_t>(rows[0].Int(0));
}

Result<std::map<std::string, ClientRecord>> SpaceStore::Clients() {
  std::vector<SqlRow> rows;
  const SqlParam p[] = {std::string_view(space_)};
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT client, last_id, identity FROM ks_clients WHERE space = $1", p, &rows));
  std::map<std::string, ClientRecord> out;
  for (SqlRow& r : rows) {
    out[std::move(*r.columns[0])] = ClientRecord{static_cast<std::uint64_t>(r.Int(1)), std::move(*r.columns[2])};
  }
  return out;
}

namespace {
std::vector<Failure> FailuresOf(std::string_view client, std::vector<SqlRow>& rows) {
  std::vector<Failure> out;
  for (SqlRow& r : rows) {
    out.push_back(Failure{std::string(client), static_cast<std::uint64_t>(r.Int(0)), std::move(*r.columns[1]),
                          std::move(*r.columns[2])});
  }
  return out;
}
}  // namespace

Result<std::vector<Failure>> SpaceStore::FailuresByIds(std::string_view client, std::uint64_t from_id,
                                                       std::uint64_t to_id) {
  std::vector<SqlRow> rows;
  const SqlParam p[] = {std::string_view(space_), client, I(from_id), I(to_id)};
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT id, code, message FROM ks_failures WHERE space = $1 AND client = $2 "
                                       "AND id >= $3 AND id <= $4 ORDER BY id",
                                       p, &rows));
  return FailuresOf(client, rows);
}

Result<std::vector<Failure>> SpaceStore::FailuresSince(std::string_view client, std::uint64_t since) {
  std::vector<SqlRow> rows;
  const SqlParam p[] = {std::string_view(space_), client, I(since)};
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec(
      "SELECT id, code, message FROM ks_failures WHERE space = $1 AND client = $2 AND version > $3 ORDER BY id", p,
      &rows));
  return FailuresOf(client, rows);
}

Result<std::optional<std::vector<std::string>>> SpaceStore::ChangedKeys(std::uint64_t since, std::uint64_t upto,
                                                                        std::size_t max_keys) {
  if (since == 0) return std::optional<std::vector<std::string>>();
  std::vector<SqlRow> rows;
  const SqlParam sp[] = {std::string_view(space_)};
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT change_floor FROM ks_heads WHERE space = $1", sp, &rows));
  if (rows.empty() || since < static_cast<std::uint64_t>(rows[0].Int(0))) {
    return std::optional<std::vector<std::string>>();
  }
  rows.clear();
  const SqlParam p[] = {std::string_view(space_), I(since), I(upto), I(max_keys + 1)};
  KEEPSTATE_RETURN_IF_ERROR(sql_->Exec("SELECT DISTINCT key FROM ks_changes WHERE space = $1 AND version > $2 AND "
                                       "version <= $3 ORDER BY key LIMIT $4",
                                       p, &rows));
  if (rows.size() > max_keys) return std::optional<std::vector<std::string>>();
  std::vector<std::string> keys;
  keys.reserve(rows.size());
  for (SqlRow& r : rows) keys.push_back(std::move(*r.columns[0]));
  return std::optional<std::vector<std::string>>(std::move(keys));
}

}  // namespace keepstate::server
