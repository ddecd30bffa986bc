// The main of an app's sync server (keepstate_add_server): the app's
// mutators are linked into the same executable; this parses the flags,
// opens the database and serves.
//
//   <server> [--host 127.0.0.1] [--port 0] [--allow-origin ORIGIN|*]... (--data DIR | --postgres CONNINFO) --tokens FILE
//
// With --port 0 the system picks a free port. --allow-origin (repeatable)
// lets pages of that origin call the server (CORS). The first line on stdout is
// always `listening on <host>:<port>` once the server accepts connections.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>

#include "keepstate/server/auth.h"
#include "keepstate/server/http.h"
#include "keepstate/server/space_store.h"

namespace {

int Usage(const char* message) {
  std::fprintf(stderr,
               "%s\nusage: server [--host 127.0.0.1] [--port 0] [--allow-origin ORIGIN|*]... (--data DIR | --postgres CONNINFO) --tokens FILE\n",
               message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace keepstate::server;
  ServerOptions options;
  options.stop_on_signals = true;
  std::string data, postgres, tokens;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return Usage(("missing the value of " + std::string(flag)).c_str());
    const char* value = argv[++i];
    if (flag == "--host") {
      options.host = value;
    } else if (flag == "--port") {
      char* end = nullptr;
      const unsigned long port = std::strtoul(value, &end, 10);
      if (*value == '\0' || *end != '\0' || port > 65535) return Usage("--port must be 0..65535");
      options.port = static_cast<std::uint16_t>(port);
    } else if (flag == "--data") {
      data = value;
    } else if (flag == "--postgres") {
      postgres = value;
    } else if (flag == "--allow-origin") {
      options.allowed_origins.emplace_back(value);
    } else if (flag == "--tokens") {
      tokens = value;
    } else {
      return Usage(("unknown flag " + std::string(flag)).c_str());
    }
  }
  if (data.empty() == postgres.empty()) return Usage("give one of --data and --postgres");
  if (tokens.empty()) return Usage("--tokens is required");

  if (!data.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(data, ec);  // --data names the directory: made if missing
    if (ec) {
      std::fprintf(stderr, "keepstate-server: cannot make the data directory %s: %s\n", data.c_str(),
                   ec.message().c_str());
      return 1;
    }
  }
  keepstate::Result<TokenFile> token_file = TokenFile::Load(tokens);
  if (!token_file.ok()) return Usage(token_file.status().ToString().c_str());
  keepstate::Result<std::unique_ptr<Database>> db =
      postgres.empty() ? Database::OpenSqlite(data) : Database::OpenPostgres(postgres);
  if (!db.ok()) {
    std::fprintf(stderr, "keepstate-server: %s\n", db.status().ToString().c_str());
    return 1;
  }
  // Processes sharing a PostgreSQL database name their packs apart.
  options.writer_id = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32) | 1;
  options.listen_conninfo = postgres;
  Server server(db->get(), token_file->AsAuthorize(), options);
  if (keepstate::Status s = server.Listen(); !s.ok()) {
    std::fprintf(stderr, "keepstate-server: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("listening on %s:%u\n", options.host.c_str(), static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  server.Run();
  return 0;
}
