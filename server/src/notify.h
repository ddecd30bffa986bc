// NotifyListener: a PostgreSQL connection of its own that LISTENs on
// `keepstate_space`, so a server learns of other processes' commits
// (SpaceStore::Commit sends pg_notify with the space's name). Its own
// connection, so that no notification is consumed by a query on the
// connection that commits while nobody watches the socket.
//
// Thread safety: none (one thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keepstate/status.h"

namespace keepstate::server {

class NotifyListener {
 public:
  // Errors: Internal (cannot connect or LISTEN).
  static Result<std::unique_ptr<NotifyListener>> Open(const std::string& conninfo);
  ~NotifyListener();
  // The socket to watch for readability.
  int socket() const;
  // The spaces named by the notifications that arrived (once each), but
  // those sent by the backend `own_pid` (this process's own commits, which
  // it holds already). Errors: Internal (the connection broke).
  Result<std::vector<std::string>> Take(int own_pid);

 private:
  explicit NotifyListener(void* conn) : conn_(conn) {}
  void* conn_;  // PGconn (libpq stays out of this header)
};

}  // namespace keepstate::server
