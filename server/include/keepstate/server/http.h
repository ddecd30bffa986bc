// Server: the HTTP/1.1 + WebSocket face of the spaces (docs/sync.md,
// "Endpoints"), on Boost.Beast: one process, one io_context, one thread
// (keepstate is single-threaded: Spaces and Replicas are only ever touched
// from it), plus one writer thread for the commit pipeline: a group's SQL
// transaction (Space::GroupCommit::Write) runs there while the I/O thread
// reads and queues the next pushes; the database connection is used by one
// of them at a time (what needs it waits for the write in flight).
//
//   POST /v1/spaces/{space}/push       → Space::Enqueue; the pushes queued
//                                        when a write starts (or ends: the
//                                        group-commit window) share a commit
//   POST /v1/spaces/{space}/pull       → Space::Pull
//   GET  /v1/spaces/{space}/snapshot   → Space::Snapshot, with Content-Length
//   GET  /v1/spaces/{space}/poke       → WebSocket: {"token"} then {"version"}s
//
// Everything from the network is untrusted: headers and bodies are bounded
// (Limits, max_header_bytes), every read and write has a timeout, requests
// that break a bound get 400/413/431 and the connection is closed, and no
// input reaches an assert. With PostgreSQL, a NotifyListener tells it of
// other processes' commits: it catches up and pokes its own clients.
//
// Thread safety: Run() on one thread; Stop() may be called from another.
// The writer thread is the Server's own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keepstate/server/auth.h"
#include "keepstate/server/protocol.h"
#include "keepstate/server/space_store.h"
#include "keepstate/status.h"

namespace keepstate::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the system picks one (port() says which)
  Limits limits;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::seconds timeout{30};  // per read or write of a request
  // Unique per process sharing the database (pack keys of its commits).
  std::uint64_t writer_id = 1;
  // PostgreSQL: the conninfo to LISTEN with (empty: no other processes).
  std::string listen_conninfo;
  // Origins whose pages may call the server (CORS: the answers name the
  // origin, preflights are answered). "*": any. Empty: none (same-origin
  // pages, or a proxy in front, or native clients).
  std::vector<std::string> allowed_origins;
  // SIGINT and SIGTERM make Run() return (a server binary's main).
  bool stop_on_signals = false;
};

class Server {
 public:
  // REQUIRES: db outlives the Server.
  Server(Database* db, Authorize authorize, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. Errors: Internal (the address cannot be bound, or the
  // LISTEN connection cannot be made).
  Status Listen();
  // The port listened on (after Listen).
  std::uint16_t port() const;
  // Serves until Stop().
  void Run();
  // Makes Run() return (from any thread).
  void Stop();

  class Impl;  // http.cc (public so that its sessions can name it)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace keepstate::server
