// Sql over PostgreSQL (libpq): parameters go as text (integers, text) or
// binary (blobs); results come back binary, so bytea needs no unescaping,
// and integer columns are converted from network order by their type.
// ExecAll sends its statements in pipeline mode (libpq 14+): one round trip;
// those with parameters as prepared statements.
#include <libpq-fe.h>

#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sql.h"

namespace keepstate::server {
namespace {

// Type oids (pg_type.h; stable since PostgreSQL 7).
constexpr Oid kInt8 = 20, kInt2 = 21, kInt4 = 23;

std::int64_t BigEndian(const char* p, int size) {
  std::uint64_t v = 0;
  for (int i = 0; i < size; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  // Sign-extend the narrower integers.
  if (size < 8 && size > 0 && (static_cast<unsigned char>(p[0]) & 0x80)) v |= ~std::uint64_t{0} << (size * 8);
  return static_cast<std::int64_t>(v);
}

// Statement parameters as libpq takes them: integers and text as text,
// blobs binary. REQUIRES: the params' views outlive it.
class PgParams {
 public:
  explicit PgParams(std::span<const SqlParam> params)
      : texts_(params.size()), values_(params.size()), lengths_(params.size()), formats_(params.size()) {
    static const char kEmpty = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        texts_[i] = std::to_string(*v);
      } else if (const auto* t = std::get_if<std::string_view>(&params[i])) {
        texts_[i] = std::string(*t);
      } else {
        const Blob& b = std::get<Blob>(params[i]);
        values_[i] = b.bytes.empty() ? &kEmpty : reinterpret_cast<const char*>(b.bytes.data());
        lengths_[i] = static_cast<int>(b.bytes.size());
        formats_[i] = 1;
        continue;
      }
      values_[i] = texts_[i].c_str();
      lengths_[i] = static_cast<int>(texts_[i].size());
    }
  }
  PgParams(const PgParams&) = delete;  // values_ point into texts_
  PgParams& operator=(const PgParams&) = delete;

  int count() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::vector<std::string> texts_;
  std::vector<const char*> values_;
  std::vector<int> lengths_, formats_;
};

class PostgresSql final : public Sql {
 public:
  explicit PostgresSql(PGconn* conn) : conn_(conn) {}
  ~PostgresSql() override { PQfinish(conn_); }
  SqlEngine engine() const override { return SqlEngine::kPostgres; }
  int session_pid() const override { return PQbackendPID(conn_); }

  const char* begin_statement() const override { return "BEGIN"; }

  // Pipeline mode: every statement is sent, then one sync; the answers are
  // read after. Past a failed statement the server skips the rest
  // (PGRES_PIPELINE_ABORTED) up to the sync, so none runs after it.
  // Statements with parameters (a commit's writes: the same few each time)
  // run as prepared statements, prepared in the pipeline on first use, so
  // the server parses and plans each once per connection.
  Status ExecAll(std::span<const SqlStatement> statements, std::vector<SqlRow>* rows) override {
    if (statements.empty()) return Status::Ok();
    if (PQenterPipelineMode(conn_) != 1) {
      return Status::Internal(std::string("postgres: pipeline: ") + PQerrorMessage(conn_));
    }
    // What each result in the pipeline answers: statement i, or the
    // preparation (of statement i's text under `name`).
    struct Answer {
      std::size_t statement;
      std::string prepared;  // non-empty: a PREPARE of this name
    };
    std::vector<Answer> answers;
    Status first = Status::Ok();
    for (std::size_t i = 0; i < statements.size() && first.ok(); ++i) {
      const SqlStatement& s = statements[i];
      const PgParams p(s.params);
      int sent = 0;
      if (s.params.empty()) {
        sent = PQsendQueryParams(conn_, s.text.c_str(), 0, nullptr, nullptr, nullptr, nullptr, /*resultFormat=*/1);
      } else {
        auto [it, is_new] = prepared_.try_emplace(s.text, Prepared{"ks_" + std::to_string(prepared_.size()), false});
        if (!it->second.ready && !std::exchange(it->second.sending, true)) {
          if (PQsendPrepare(conn_, it->second.name.c_str(), s.text.c_str(), p.count(), nullptr) != 1) {
            first = Status::Internal("postgres: prepare " + s.text.substr(0, 80) + ": " + PQerrorMessage(conn_));
            break;
          }
          answers.push_back({i, it->second.name});
        }
        sent = PQsendQueryPrepared(conn_, it->second.name.c_str(), p.count(), p.values(), p.lengths(), p.formats(),
                                   /*resultFormat=*/1);
      }
      if (sent != 1) {
        first = Status::Internal("postgres: " + s.text.substr(0, 80) + ": " + PQerrorMessage(conn_));
        break;
      }
      answers.push_back({i, {}});
    }
    if (PQpipelineSync(conn_) != 1 && first.ok()) {
      first = Status::Internal(std::string("postgres: pipeline sync: ") + PQerrorMessage(conn_));
    }
    // Each answer's results end with a null; the sync's result ends the
    // pipeline. Two nulls in a row: nothing more will come (a lost connection).
    std::size_t at = 0;
    bool after_null = false;
    for (;;) {
      PGresult* res = PQgetResult(conn_);
      if (res == nullptr) {
        if (after_null) break;
        after_null = true;
        ++at;
        continue;
      }
      after_null = false;
      const ExecStatusType st = PQresultStatus(res);
      if (st == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        break;
      }
      if (at < answers.size() && st != PGRES_PIPELINE_ABORTED) {
        const Answer& a = answers[at];
        const Status s = Check(res, statements[a.statement].text);
        if (!a.prepared.empty() && s.ok()) prepared_[statements[a.statement].text].ready = true;
        if (first.ok()) first = s;
        if (s.ok() && a.prepared.empty() && rows != nullptr) AppendRows(res, rows);
      }
      PQclear(res);
    }
    // A preparation that did not answer ok is sent again next time.
    for (auto& [text, p] : prepared_) p.sending = false;
    if (PQexitPipelineMode(conn_) != 1 && first.ok()) {
      first = Status::Internal(std::string("postgres: pipeline exit: ") + PQerrorMessage(conn_));
    }
    return first;
  }

  Status Run(std::string_view statement, std::span<const SqlParam> params, std::vector<SqlRow>* rows) override {
    const PgParams p(params);
    const std::string text(statement);
    PGresult* res = PQexecParams(conn_, text.c_str(), p.count(), nullptr, p.values(), p.lengths(), p.formats(),
                                 /*resultFormat=*/1);
    Status s = Check(res, statement);
    if (s.ok() && rows != nullptr) AppendRows(res, rows);
    PQclear(res);
    return s;
  }

 private:
  static void AppendRows(const PGresult* res, std::vector<SqlRow>* rows) {
    const int n = PQntuples(res), cols = PQnfields(res);
    for (int r = 0; r < n; ++r) {
      SqlRow& row = rows->emplace_back();
      for (int c = 0; c < cols; ++c) {
        if (PQgetisnull(res, r, c)) {
          row.columns.emplace_back(std::nullopt);
          continue;
        }
        const char* p = PQgetvalue(res, r, c);
        const int size = PQgetlength(res, r, c);
        const Oid type = PQftype(res, c);
        if (type == kInt8 || type == kInt4 || type == kInt2) {
          row.columns.emplace_back(std::to_string(BigEndian(p, size)));
        } else {
          row.columns.emplace_back(std::string(p, size));
        }
      }
    }
  }

  Status Check(PGresult* res, std::string_view statement) {
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::Ok();
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    std::string message =
        "postgres: " + std::string(statement.substr(0, 80)) + ": " + PQresultErrorMessage(res);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    const std::string code = state ? state : "";
    // 23505 unique_violation, 40001 serialization_failure, 40P01 deadlock:
    // another writer got there first; the caller catches up and redoes.
    if (code == "23505" || code == "40001" || code == "40P01") return Status::Conflict(std::move(message));
    if (code == "53100") return Status::OutOfSpace(std::move(message));  // disk_full
    return Status::Internal(std::move(message));
  }

  // The prepared statements of this connection, by text.
  struct Prepared {
    std::string name;
    bool ready = false;    // prepared on the server
    bool sending = false;  // its PREPARE is in the pipeline being sent
  };
  PGconn* conn_;
  std::map<std::string, Prepared, std::less<>> prepared_;
};

}  // namespace

Result<std::unique_ptr<Sql>> OpenPostgres(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = std::string("postgres: cannot connect: ") + PQerrorMessage(conn);
    PQfinish(conn);
    return Status::Internal(std::move(message));
  }
  auto sql = std::make_unique<PostgresSql>(conn);
  // Quiet: CREATE ... IF NOT EXISTS notices would go to stderr.
  KEEPSTATE_RETURN_IF_ERROR(sql->Exec("SET client_min_messages = warning"));
  return std::unique_ptr<Sql>(std::move(sql));
}

}  // namespace keepstate::server
