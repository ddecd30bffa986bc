// The ledger's server binary, started on port 0 and spoken to over HTTP and
// WebSocket on 127.0.0.1: 401 without a valid token, push and pull, the
// snapshot's headers, a poke after each commit, 4401 for a bad poke token,
// and hostile requests (malformed, truncated, oversized body or headers)
// answered 400/413/431 with the space unchanged; pushes from many clients at
// once, the server killed among them: every answered push survived, none
// applied twice. The process is stopped when the test ends, passing or
// failing.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "keepstate/server/protocol.h"
#include "server_support.h"

extern char** environ;

namespace keepstate::server {
namespace {

using namespace testing;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// The server binary as a child process; killed and reaped by the destructor.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> args) {
    args.insert(args.begin(), KEEPSTATE_LEDGER_SERVER);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    REQUIRE(pipe(out) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const int spawned = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    out_ = out[0];
    REQUIRE(spawned == 0);
    // The first line: `listening on 127.0.0.1:<port>`.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.empty() || line.back() != '\n') {
      pollfd p{out_, POLLIN, 0};
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      if (poll(&p, 1, 200) <= 0) continue;
      char c;
      REQUIRE(read(out_, &c, 1) == 1);
      line.push_back(c);
    }
    INFO(line);
    REQUIRE(line.rfind("listening on 127.0.0.1:", 0) == 0);
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 50 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (waitpid(pid_, &status, WNOHANG) == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
    }
    if (out_ >= 0) close(out_);
  }
  std::uint16_t port() const { return port_; }
  // SIGKILL: nothing of the process's memory survives, only what it committed.
  void Kill() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::uint16_t port_ = 0;
};

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string header(std::string_view name) const {
    auto it = fields.find(name);
    return it == fields.end() ? std::string() : std::string(it->value());
  }
  http::fields fields;
};

Reply Send(std::uint16_t port, http::verb verb, const std::string& target, const std::string& body,
           std::optional<std::string> token, std::optional<std::string> origin = std::nullopt) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(verb, target, 11);
  req.set(http::field::host, "127.0.0.1");
  if (token) req.set(http::field::authorization, "Bearer " + *token);
  if (origin) req.set(http::field::origin, *origin);
  if (verb == http::verb::post) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  http::read(stream, buffer, parser);
  Reply reply;
  reply.status = parser.get().result_int();
  reply.body = parser.get().body();
  reply.fields = parser.get().base();
  return reply;
}

// Raw bytes, then the answer (for requests a well-behaved client cannot make).
Reply SendRaw(std::uint16_t port, const std::string& bytes) {
  net::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  net::write(socket, net::buffer(bytes));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  return Reply{res.result_int(), res.body(), res.base()};
}

std::string PushBody(const std::string& client, const std::vector<Mutation>& ms) {
  std::string body = R"({"client":")" + client + R"(","mutations":[)";
  for (std::size_t i = 0; i < ms.size(); ++i) {
    body += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(ms[i].id) + R"(,"name":")" + ms[i].name +
            R"(","args":")" + Base64Encode(ms[i].args) + R"("})";
  }
  return body + "]}";
}

std::uint64_t Number(const std::string& json, const char* field) {
  return boost::json::parse(json).as_object().at(field).to_number<std::uint64_t>();
}

TEMPLATE_TEST_CASE("http: the ledger server binary answers push, pull, snapshot and poke on 127.0.0.1", "[server]",
                   Sqlite, Postgres) {
  TestType backend;
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  // A space of its own per run: PostgreSQL's database is shared.
  const std::string space = UniqueName("ledger");
  std::ofstream(tokens) << "# test tokens\n* master\n" << space << " alice-token\n";
  std::vector<std::string> args{"--port", "0", "--tokens", tokens};
  for (const std::string& f : backend.Flags()) args.push_back(f);
  ServerProcess server(args);
  const std::uint16_t port = server.port();
  const std::string push = "/v1/spaces/" + space + "/push", pull = "/v1/spaces/" + space + "/pull";
  const std::string client = UniqueName("c").substr(2);

  // 401: no token, a wrong one, a token of another space.
  CHECK(Send(port, http::verb::post, pull, "{}", std::nullopt).status == 401);
  CHECK(Send(port, http::verb::post, pull, "{}", "nope").status == 401);
  CHECK(Send(port, http::verb::post, "/v1/spaces/other/pull", "{}", "alice-token").status == 401);

  // The poke socket: the version at once, then after each commit.
  net::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  ws.handshake("127.0.0.1", "/v1/spaces/" + space + "/poke");
  ws.write(net::buffer(std::string(R"({"token":"alice-token"})")));
  beast::flat_buffer poke;
  ws.read(poke);
  const std::uint64_t v0 = Number(beast::buffers_to_string(poke.data()), "version");
  poke.consume(poke.size());

  Reply r = Send(port, http::verb::post, push,
                 PushBody(client, {M(1, "open_account", OpenAccountArgs(1, 3, 50)), M(2, "transfer", TransferArgs(1, 2, 80))}),
                 "alice-token");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(Number(r.body, "lastMutationId") == 2);
  const std::uint64_t v1 = Number(r.body, "version");
  CHECK(v1 == v0 + 1);
  CHECK(r.body.find(R"("failed":[{"id":2,"code":"invalid-argument")") != std::string::npos);
  ws.read(poke);
  {
    // The commit's patch rides along: this socket was told v0, and the push changed accounts 1-3.
    const std::string text = beast::buffers_to_string(poke.data());
    INFO(text);
    CHECK(Number(text, "version") == v1);
    CHECK(Number(text, "from") == v0);
    const boost::json::value parsed = boost::json::parse(text);
    const boost::json::array& entries = parsed.as_object().at("entries").as_array();
    CHECK(entries.size() >= 3);
    CHECK(std::any_of(entries.begin(), entries.end(), [](const boost::json::value& e) {
      return e.as_array().at(0).as_string() == Base64Encode(AccountKey(2));
    }));
    poke.consume(poke.size());
  }

  // Another identity cannot push for this client.
  CHECK(Send(port, http::verb::post, push, PushBody(client, {M(3, "transfer", TransferArgs(1, 2, 1))}), "master")
            .status == 403);
  // A gap.
  CHECK(Send(port, http::verb::post, push, PushBody(client, {M(9, "transfer", TransferArgs(1, 2, 1))}), "alice-token")
            .status == 409);

  // Hostile requests: each answered, none applied.
  const std::string big_args(17u << 20, 'x');
  CHECK(Send(port, http::verb::post, push, "{\"client\":", "alice-token").status == 400);
  CHECK(Send(port, http::verb::post, push, PushBody(client, {M(3, "transfer", "\x01")}).substr(0, 40), "alice-token")
            .status == 400);
  CHECK(Send(port, http::verb::post, push, R"({"client":"x","mutations":[]})", "alice-token").status == 400);
  CHECK(Send(port, http::verb::post, pull, R"({"client":")" + client + R"(","since":-1})", "alice-token").status ==
        400);
  CHECK(SendRaw(port, "POST " + push +
                          " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\nContent-Length: 20000000\r\n\r\n{")
            .status == 413);
  CHECK(SendRaw(port, "POST " + push + " HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n")
            .status == 431);
  CHECK(SendRaw(port, "NOT HTTP AT ALL\r\n\r\n").status == 400);
  CHECK(Send(port, http::verb::get, "/nowhere", "", "master").status == 404);

  // Pull: the space is as the one push left it.
  r = Send(port, http::verb::post, pull, R"({"client":")" + client + R"(","since":)" + std::to_string(v0) + "}",
           "alice-token");
  REQUIRE(r.status == 200);
  CHECK(Number(r.body, "version") == v1);
  CHECK(Number(r.body, "lastMutationId") == 2);
  CHECK(boost::json::parse(r.body).as_object().at("full").as_bool());  // since 0
  r = Send(port, http::verb::post, pull, R"({"client":")" + client + R"(","since":)" + std::to_string(v1) +
           R"(,"keys":[")" + Base64Encode(AccountKey(2)) + R"("]})", "alice-token");
  REQUIRE(r.status == 200);
  CHECK(boost::json::parse(r.body).as_object().at("entries").as_array().size() == 1);

  // The snapshot.
  r = Send(port, http::verb::get, "/v1/spaces/" + space + "/snapshot?client=" + client, "", "alice-token");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type") == "application/octet-stream");
  CHECK(r.header("Keepstate-Version") == std::to_string(v1));
  CHECK(r.header("Keepstate-Last-Mutation-Id") == "2");
  CHECK(r.body.size() == std::stoul(r.header("Content-Length")));
  CHECK(r.body.size() > 4096);
  ws.close(websocket::close_code::normal);

  // A bad poke token: closed with 4401.
  websocket::stream<tcp::socket> bad(io);
  bad.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  bad.handshake("127.0.0.1", "/v1/spaces/" + space + "/poke");
  bad.write(net::buffer(std::string(R"({"token":"nope"})")));
  beast::flat_buffer b;
  beast::error_code ec;
  bad.read(b, ec);
  CHECK(ec == websocket::error::closed);
  CHECK(bad.reason().code == 4401);
}

TEST_CASE("http: pages of an allowed origin may call the server (CORS), other origins get no CORS headers",
          "[server]") {
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  std::ofstream(tokens) << "* master\n";
  ServerProcess server({"--port", "0", "--tokens", tokens, "--data", dir.path() + "/data", "--allow-origin",
                        "http://app.test:8080"});
  const std::string pull = "/v1/spaces/cors/pull", body = R"({"client":"client-cors","since":0})";

  // The preflight a browser sends before a POST with Authorization and JSON.
  Reply r = Send(server.port(), http::verb::options, pull, "", std::nullopt, "http://app.test:8080");
  CHECK(r.status == 204);
  CHECK(r.header("Access-Control-Allow-Origin") == "http://app.test:8080");
  CHECK(r.header("Access-Control-Allow-Headers") == "Authorization, Content-Type");
  CHECK(r.header("Access-Control-Allow-Methods") == "GET, POST");
  r = Send(server.port(), http::verb::post, pull, body, "master", "http://app.test:8080");
  CHECK(r.status == 200);
  CHECK(r.header("Access-Control-Allow-Origin") == "http://app.test:8080");
  CHECK(r.header("Access-Control-Expose-Headers") == "Keepstate-Version, Keepstate-Last-Mutation-Id");
  // Still 401 without a token, and the browser may read why.
  r = Send(server.port(), http::verb::post, pull, body, std::nullopt, "http://app.test:8080");
  CHECK(r.status == 401);
  CHECK(r.header("Access-Control-Allow-Origin") == "http://app.test:8080");

  // Another origin: answered (a server cannot stop a request being sent) but
  // without the headers, so the browser keeps the answer from the page.
  r = Send(server.port(), http::verb::options, pull, "", std::nullopt, "http://evil.test");
  CHECK(r.status == 204);
  CHECK(r.header("Access-Control-Allow-Origin").empty());
  CHECK(r.header("Access-Control-Allow-Headers").empty());
  r = Send(server.port(), http::verb::post, pull, body, "master", "http://evil.test");
  CHECK(r.header("Access-Control-Allow-Origin").empty());
}

}  // namespace
}  // namespace keepstate::server

namespace keepstate::server {
namespace {

// What a pull says of `client`: its last mutation id and account `account`'s balance.
std::pair<std::uint64_t, std::int64_t> Pulled(std::uint16_t port, const std::string& space, const std::string& client,
                                              std::uint32_t account) {
  const std::string pull = "/v1/spaces/" + space + "/pull";
  // Since 0: the version (the answer is `full`); since it: the asked key alone.
  Reply r = Send(port, http::verb::post, pull, R"({"client":")" + client + R"(","since":0})", "master");
  REQUIRE(r.status == 200);
  r = Send(port, http::verb::post, pull,
           R"({"client":")" + client + R"(","since":)" + std::to_string(Number(r.body, "version")) + R"(,"keys":[")" +
               Base64Encode(AccountKey(account)) + R"("]})",
           "master");
  INFO(r.body);
  REQUIRE(r.status == 200);
  const boost::json::object o = boost::json::parse(r.body).as_object();
  std::optional<std::string> value;
  for (const boost::json::value& e : o.at("entries").as_array()) {
    const boost::json::array& pair = e.as_array();
    Result<std::string> key = Base64Decode(pair.at(0).as_string());
    REQUIRE(key.ok());
    if (*key == AccountKey(account) && pair.at(1).is_string()) value = *Base64Decode(pair.at(1).as_string());
  }
  return {o.at("lastMutationId").to_number<std::uint64_t>(), BalanceIn(value)};
}

TEMPLATE_TEST_CASE(
    "http: pushes from many clients at once are answered once committed: a kill loses none, applies none twice",
    "[server]", Sqlite, Postgres) {
  TestType backend;
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  std::ofstream(tokens) << "* master\n";
  const std::string space = UniqueName("killed");
  std::vector<std::string> args{"--port", "0", "--tokens", tokens};
  for (const std::string& f : backend.Flags()) args.push_back(f);
  const std::string push = "/v1/spaces/" + space + "/push";
  constexpr int kClients = 8, kPushes = 200, kRounds = 8;
  constexpr std::int64_t kInitial = 1'000'000;
  {
    ServerProcess server(args);
    REQUIRE(Send(server.port(), http::verb::post, push,
                 PushBody("opener-0001", {M(1, "open_account", OpenAccountArgs(1, kClients + 1, kInitial))}), "master")
                .status == 200);
  }
  // Each round, each client pushes one transfer at a time (from its own
  // account to account 1) from where it stands, so the server's groups form
  // from concurrent pushes, and records the last id answered; the server is
  // killed mid-way (a kill catches a group in its write now and then: hence
  // the rounds).
  std::vector<std::uint64_t> stored(kClients, 0);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::uint64_t> answered(stored);
    std::atomic<int> answers{0};
    {
      ServerProcess server(args);
      const std::uint16_t port = server.port();
      std::vector<std::thread> clients;
      for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
          const std::string client = "killed-client-" + std::to_string(c);
          for (std::uint64_t id = stored[c] + 1; id <= stored[c] + kPushes; ++id) {
            try {
              const Reply r = Send(port, http::verb::post, push,
                                   PushBody(client, {M(id, "transfer", TransferArgs(c + 2, 1, 1))}), "master");
              if (r.status != 200) return;
              answered[c] = Number(r.body, "lastMutationId");
              ++answers;
            } catch (const std::exception&) {
              return;  // the server is gone
            }
          }
        });
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (answers < kClients * kPushes / 4 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      server.Kill();
      for (std::thread& t : clients) t.join();
    }
    INFO("round " << round << ": answered before the kill: " << answers.load());
    CHECK(answers < kClients * kPushes);  // the kill came while pushes were in flight
    ServerProcess again(args);
    for (int c = 0; c < kClients; ++c) {
      const std::uint64_t last = Pulled(again.port(), space, "killed-client-" + std::to_string(c), c + 2).first;
      INFO("client " << c << ": answered up to " << answered[c] << ", stored " << last);
      CHECK(last >= answered[c]);  // answered means committed
      stored[c] = last;
    }
  }
  ServerProcess server(args);
  std::uint64_t applied = 0;
  for (int c = 0; c < kClients; ++c) {
    const auto [last, balance] = Pulled(server.port(), space, "killed-client-" + std::to_string(c), c + 2);
    CHECK(balance == kInitial - static_cast<std::int64_t>(last));  // each processed id moved 1, once
    applied += last;
  }
  CHECK(Pulled(server.port(), space, "opener-0001", 1).second == kInitial + static_cast<std::int64_t>(applied));
}

}  // namespace
}  // namespace keepstate::server
