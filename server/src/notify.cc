#include "notify.h"

#include <libpq-fe.h>

#include <algorithm>

namespace keepstate::server {

Result<std::unique_ptr<NotifyListener>> NotifyListener::Open(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = std::string("postgres: cannot connect: ") + PQerrorMessage(conn);
    PQfinish(conn);
    return Status::Internal(std::move(message));
  }
  std::unique_ptr<NotifyListener> listener(new NotifyListener(conn));
  PGresult* res = PQexec(conn, "LISTEN keepstate_space");
  const bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (!ok) return Status::Internal(std::string("postgres: LISTEN failed: ") + PQerrorMessage(conn));
  return listener;
}

NotifyListener::~NotifyListener() { PQfinish(static_cast<PGconn*>(conn_)); }

int NotifyListener::socket() const { return PQsocket(static_cast<PGconn*>(conn_)); }

Result<std::vector<std::string>> NotifyListener::Take(int own_pid) {
  auto* conn = static_cast<PGconn*>(conn_);
  if (PQconsumeInput(conn) == 0) return Status::Internal(std::string("postgres: ") + PQerrorMessage(conn));
  std::vector<std::string> spaces;
  while (PGnotify* n = PQnotifies(conn)) {
    if (n->be_pid != own_pid) spaces.emplace_back(n->extra);
    PQfreemem(n);
  }
  std::sort(spaces.begin(), spaces.end());
  spaces.erase(std::unique(spaces.begin(), spaces.end()), spaces.end());
  return spaces;
}

}  // namespace keepstate::server
