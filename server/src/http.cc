#include "keepstate/server/http.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "keepstate/server/space.h"
#include "notify.h"

namespace keepstate::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

namespace {

// /v1/spaces/{space}/{action}[?query] → (space, action, query); false if the
// target has another shape.
bool Route(std::string_view target, std::string* space, std::string* action, std::string* query) {
  constexpr std::string_view kPrefix = "/v1/spaces/";
  if (target.substr(0, kPrefix.size()) != kPrefix) return false;
  target.remove_prefix(kPrefix.size());
  if (const std::size_t q = target.find('?'); q != std::string_view::npos) {
    *query = std::string(target.substr(q + 1));
    target = target.substr(0, q);
  }
  const std::size_t slash = target.find('/');
  if (slash == std::string_view::npos) return false;
  *space = std::string(target.substr(0, slash));
  *action = std::string(target.substr(slash + 1));
  return ValidSpace(*space);
}

// The value of `name` in a query string (no percent-decoding: the values
// the protocol puts there are client ids, which need none).
std::optional<std::string> QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> BearerToken(const Request& req) {
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return std::nullopt;
  const std::string_view value(it->value().data(), it->value().size());
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() <= kBearer.size() || value.substr(0, kBearer.size()) != kBearer) return std::nullopt;
  return value.substr(kBearer.size());
}

// The group-commit window's bounds (Server::Impl::Written): writes quicker
// than a client's round trip wait for nobody; none waits longer than this.
constexpr std::chrono::microseconds kMinWindow{50};
constexpr std::chrono::microseconds kMaxWindow{2000};

unsigned HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument:
      return 400;
    case Code::kOutOfSpace:
      return 413;
    case Code::kNotFound:
      return 404;
    default:
      return 503;
  }
}

}  // namespace

class Server::Impl {
 public:
  Impl(Database* db, server::Authorize authorize, ServerOptions options)
      : db_(db), authorize_(std::move(authorize)), options_(std::move(options)), acceptor_(io_) {}

  Status Listen();
  std::uint16_t port() const { return port_; }
  void Run();
  void Stop() { io_.stop(); }

  // The open space `name`, opened on first use. Errors: the store's.
  // REQUIRES: the database is free (WhenDatabaseFree), unless the space is open.
  Result<Space*> SpaceNamed(const std::string& name);
  // The space `name` if it is open, else nullptr.
  Space* OpenSpace(const std::string& name) {
    auto it = spaces_.find(name);
    return it == spaces_.end() ? nullptr : it->second.get();
  }
  // Starts a commit of the space's queued pushes after the handlers ready
  // now have run, so that the pushes they enqueue share it; while another
  // commit is in flight, the space waits for it to finish.
  void ScheduleFlush(Space* space);
  // Runs fn now if no commit is in flight, else right after it finished
  // (before the next starts): what reads the database or a Space's state
  // (pulls, snapshots, opening a space, catching up) waits for the writer.
  void WhenDatabaseFree(std::function<void()> fn) {
    if (committing_ == nullptr) return fn();
    after_commit_.push_back(std::move(fn));
  }
  // Sends a push's answer (fn): now, or, for the pushes of a group that
  // just committed, at the end of Written — once the next group's write
  // has started (answering overlaps with it) or the window opened.
  void SendAnswer(std::function<void()> fn) {
    if (!answers_wait_) return fn();
    answers_.push_back(std::move(fn));
  }
  Result<std::string> Authorized(std::string_view space, std::string_view token) {
    try {
      return authorize_(space, token);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("authorization failed: ") + e.what());
    }
  }
  const ServerOptions& options() const { return options_; }
  bool OriginAllowed(std::string_view origin) const {
    for (const std::string& allowed : options_.allowed_origins) {
      if (allowed == "*" || allowed == origin) return true;
    }
    return false;
  }
  net::io_context& io() { return io_; }

 private:
  void Accept();
  void WatchNotifications();
  // The commit pipeline. At most one group commit is in flight (the database
  // is one connection): its SQL transaction runs on committer_, while this
  // thread goes on reading, decoding and queueing requests; when it is
  // written, Finish answers its pushes here, what waited for the database
  // runs, and the next group (everything queued meanwhile) starts — or,
  // in the group-commit window, starts once the clients just answered
  // have pushed again.
  void StartCommits();
  std::size_t QueuedPushes() const {
    std::size_t n = 0;
    for (const Space* s : flush_wanted_) n += s->queued();
    return n;
  }
  void Write(Space* space, std::unique_ptr<Space::GroupCommit> group);
  void Written(Space* space, std::unique_ptr<Space::GroupCommit> group, const Status& written);

  Database* db_;
  server::Authorize authorize_;
  ServerOptions options_;
  // Before io_: destroying io_ destroys the sessions its handlers hold,
  // which unsubscribe from their spaces, so the spaces must outlive it.
  std::map<std::string, std::unique_ptr<Space>> spaces_;
  std::set<Space*> flush_wanted_;
  bool start_posted_ = false;
  Space* committing_ = nullptr;  // the space whose group is being written
  std::vector<std::function<void()>> after_commit_;
  bool answers_wait_ = false;  // in Written, until the next write started
  // The group-commit window (see Written): while gathering_, the next group
  // waits until gather_target_ pushes are queued or gather_timer_ fires.
  bool gathering_ = false;
  std::size_t gather_target_ = 0;
  // How long the last write took: set by the committer thread, read by
  // Written, which runs after it (one write in flight at a time).
  std::chrono::steady_clock::duration last_write_{};
  std::vector<std::function<void()>> answers_;
  net::io_context io_;
  net::steady_timer gather_timer_{io_};  // after io_, which it uses
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::unique_ptr<NotifyListener> listener_;
  std::optional<net::posix::stream_descriptor> listener_socket_;
  std::optional<net::signal_set> signals_;
  // Last: destroyed first, joining a write in flight while the spaces and
  // io_ (which it posts its outcome to) still exist.
  net::thread_pool committer_{1};
};

namespace {

// One WebSocket of the poke endpoint: reads the token, then sends the
// space's version now and after each commit, with the commit's patch when it
// follows the version this socket sent last (docs/sync.md, "poke"). Only the
// newest version matters, so a poke that finds a write in flight just
// updates what the next write sends.
class PokeSession : public std::enable_shared_from_this<PokeSession> {
 public:
  PokeSession(Server::Impl* server, tcp::socket socket, std::string space)
      : server_(server), ws_(std::move(socket)), space_(std::move(space)) {}
  ~PokeSession() {
    if (space_ptr_ != nullptr) space_ptr_->Unsubscribe(subscription_);
  }

  void Start(Request req) {
    ws_.read_message_max(4096);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->ReadHello();
    });
  }

 private:
  void ReadHello() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      const std::string message = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->Hello(message);
    });
  }

  void Hello(const std::string& message) {
    Result<std::string> token = DecodePokeHello(message);
    if (!token.ok() || !server_->Authorized(space_, *token).ok()) {
      ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(4401), "unauthorized"), [self = shared_from_this()](beast::error_code) {});
      return;
    }
    server_->WhenDatabaseFree([self = shared_from_this()] { self->Subscribe(); });
  }

  void Subscribe() {
    Result<Space*> space = server_->SpaceNamed(space_);
    if (!space.ok()) {
      ws_.async_close(websocket::close_reason(websocket::close_code::internal_error),
                      [self = shared_from_this()](beast::error_code) {});
      return;
    }
    space_ptr_ = *space;
    std::weak_ptr<PokeSession> weak = shared_from_this();
    subscription_ = space_ptr_->Subscribe([weak](const Space::Poke& poke) {
      if (auto self = weak.lock()) self->Poke(poke);
    });
    ws_.text(true);
    Poke({space_ptr_->version(), std::nullopt, nullptr});
    Drain();
  }

  void Poke(const Space::Poke& poke) {
    pending_ = poke;
    if (!writing_) Write();
  }

  void Write() {
    if (!pending_) return;
    // A patch from a version this socket did not send cannot be applied.
    const bool patch = pending_->patch_from.has_value() && sent_ == pending_->patch_from;
    out_ = patch ? pending_->with_patch : std::make_shared<const std::string>(EncodePoke(pending_->version));
    sent_ = pending_->version;
    pending_.reset();
    writing_ = true;
    ws_.async_write(net::buffer(*out_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (!ec) self->Write();
    });
  }

  // Reads (and ignores) what the client sends, to see pings and the close.
  void Drain() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) {
        if (self->space_ptr_ != nullptr) self->space_ptr_->Unsubscribe(self->subscription_);
        self->space_ptr_ = nullptr;
        return;
      }
      self->buffer_.consume(self->buffer_.size());
      self->Drain();
    });
  }

  Server::Impl* server_;
  websocket::stream<beast::tcp_stream> ws_;
  std::string space_;
  Space* space_ptr_ = nullptr;
  std::uint64_t subscription_ = 0;
  beast::flat_buffer buffer_;
  std::optional<Space::Poke> pending_;
  std::optional<std::uint64_t> sent_;  // the version of the last poke sent
  bool writing_ = false;
  std::shared_ptr<const std::string> out_;  // what is being written (a patch's bytes are shared by every socket)
};

// One HTTP connection: requests one at a time (keep-alive), each answered
// before the next is read.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Server::Impl* server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {}

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options().max_header_bytes));
    parser_->body_limit(server_->options().limits.max_body);
    stream_.expires_after(server_->options().timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->OnRead(ec);
    });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::connection_reset) {
      return Close();
    }
    if (ec == http::error::body_limit) return Fail(413, "the body is larger than the server accepts");
    if (ec == http::error::header_limit) return Fail(431, "the headers are larger than the server accepts");
    if (ec) return Fail(400, "malformed request: " + ec.message());
    Request req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    const auto origin = req.find(http::field::origin);
    allowed_origin_ = origin != req.end() && server_->OriginAllowed(std::string_view(origin->value().data(), origin->value().size()))
                          ? std::string(origin->value())
                          : std::string();
    Handle(std::move(req));
  }

  void Handle(Request req) {
    std::string space, action, query;
    const std::string_view target(req.target().data(), req.target().size());
    if (!Route(target, &space, &action, &query)) return Answer(404, EncodeError("no such endpoint"));
    if (action == "poke" && websocket::is_upgrade(req)) {
      // The browser's WebSocket cannot set headers: the token is the first message.
      stream_.expires_never();
      std::make_shared<PokeSession>(server_, stream_.release_socket(), space)->Start(std::move(req));
      return;
    }
    if (req.method() == http::verb::options) return Preflight();
    const std::optional<std::string_view> token = BearerToken(req);
    if (!token) return Answer(401, EncodeError("unauthorized"));
    Result<std::string> identity = server_->Authorized(space, *token);
    if (!identity.ok()) return Answer(401, EncodeError("unauthorized"));
    if (action == "push" && req.method() == http::verb::post) return Push(space, *identity, req.body());
    if (action == "pull" && req.method() == http::verb::post) return Pull(space, req.body());
    if (action == "snapshot" && req.method() == http::verb::get) return Snapshot(space, query);
    return Answer(404, EncodeError("no such endpoint"));
  }

  void Push(const std::string& name, std::string identity, const std::string& body) {
    Result<PushRequest> request = DecodePush(body, server_->options().limits);
    if (!request.ok()) return Answer(HttpStatusOf(request.status()), EncodeError(request.status().message()));
    // An open space queues the push at once, also while a commit is in
    // flight (it goes into the next group); opening one reads the database.
    if (Space* open = server_->OpenSpace(name)) return Enqueue(open, std::move(*request), std::move(identity));
    server_->WhenDatabaseFree(
        [self = shared_from_this(), name, request = std::move(*request), identity = std::move(identity)]() mutable {
          Result<Space*> space = self->server_->SpaceNamed(name);
          if (!space.ok()) return self->Answer(503, EncodeError(space.status().ToString()));
          self->Enqueue(*space, std::move(request), std::move(identity));
        });
  }

  void Enqueue(Space* space, PushRequest request, std::string identity) {
    space->Enqueue(std::move(request), std::move(identity), [self = shared_from_this()](PushResult r) {
      self->server_->SendAnswer([self, r = std::move(r)] {
        switch (r.refusal) {
          case Refusal::kNone:
            return self->Answer(200, EncodePush(r.response));
          case Refusal::kForbidden:
            return self->Answer(403, EncodeError(r.message));
          case Refusal::kGap:
            return self->Answer(409, EncodeError(r.message));
          case Refusal::kUnavailable:
            return self->Answer(503, EncodeError(r.message));
        }
      });
    });
    server_->ScheduleFlush(space);
  }

  void Pull(const std::string& name, const std::string& body) {
    Result<PullRequest> request = DecodePull(body, server_->options().limits);
    if (!request.ok()) return Answer(HttpStatusOf(request.status()), EncodeError(request.status().message()));
    server_->WhenDatabaseFree(
        [self = shared_from_this(), name, request = std::move(*request)] { self->PullFree(name, request); });
  }

  void PullFree(const std::string& name, const PullRequest& request) {
    Result<Space*> space = server_->SpaceNamed(name);
    if (!space.ok()) return Answer(503, EncodeError(space.status().ToString()));
    Result<PullResponse> response = (*space)->Pull(request);
    if (!response.ok()) return Answer(503, EncodeError(response.status().ToString()));
    Answer(200, EncodePull(*response));
  }

  void Snapshot(const std::string& name, const std::string& query) {
    const std::optional<std::string> client = QueryValue(query, "client");
    if (client && !ValidClient(*client)) return Answer(400, EncodeError("client must match [A-Za-z0-9_-]{8,64}"));
    server_->WhenDatabaseFree([self = shared_from_this(), name, client] { self->SnapshotFree(name, client); });
  }

  void SnapshotFree(const std::string& name, const std::optional<std::string>& client) {
    Result<Space*> space = server_->SpaceNamed(name);
    if (!space.ok()) return Answer(503, EncodeError(space.status().ToString()));
    Result<std::string> file = (*space)->Snapshot();
    if (!file.ok()) return Answer(HttpStatusOf(file.status()), EncodeError(file.status().message()));
    auto res = std::make_shared<Response>(http::status::ok, version_);
    res->set(http::field::content_type, "application/octet-stream");
    res->set("Keepstate-Version", std::to_string((*space)->version()));
    res->set("Keepstate-Last-Mutation-Id", std::to_string(client ? (*space)->LastMutationId(*client) : 0));
    res->body() = std::move(*file);
    Send(std::move(res));
  }

  // A CORS preflight (a page of another origin about to send Authorization
  // and a JSON body): allowed origins get the methods and headers, others a
  // 204 without them (the browser then refuses the request itself).
  void Preflight() {
    auto res = std::make_shared<Response>(http::status::no_content, version_);
    if (!allowed_origin_.empty()) {
      res->set(http::field::access_control_allow_methods, "GET, POST");
      res->set(http::field::access_control_allow_headers, "Authorization, Content-Type");
      res->set(http::field::access_control_max_age, "600");
    }
    Send(std::move(res));
  }

  void Answer(unsigned status, std::string body) {
    auto res = std::make_shared<Response>(static_cast<http::status>(status), version_);
    res->set(http::field::content_type, "application/json");
    res->body() = std::move(body);
    Send(std::move(res));
  }

  // Answers and closes: after a malformed request the stream's framing
  // cannot be trusted.
  void Fail(unsigned status, std::string message) {
    keep_alive_ = false;
    Answer(status, EncodeError(message));
  }

  void Send(std::shared_ptr<Response> res) {
    if (!allowed_origin_.empty()) {
      res->set(http::field::access_control_allow_origin, allowed_origin_);
      res->set(http::field::access_control_expose_headers, "Keepstate-Version, Keepstate-Last-Mutation-Id");
      res->set(http::field::vary, "Origin");
    }
    res->keep_alive(keep_alive_);
    res->prepare_payload();  // Content-Length
    stream_.expires_after(server_->options().timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  Server::Impl* server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  std::string allowed_origin_;  // the request's Origin, if allowed (CORS)
};

}  // namespace

Status Server::Impl::Listen() {
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(options_.host, ec);
  if (ec) return Status::InvalidArgument("--host " + options_.host + ": " + ec.message());
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::Internal("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " + ec.message());
  port_ = acceptor_.local_endpoint(ec).port();
  if (!options_.listen_conninfo.empty()) {
    KEEPSTATE_ASSIGN_OR_RETURN(listener_, NotifyListener::Open(options_.listen_conninfo));
    listener_socket_.emplace(io_, ::dup(listener_->socket()));
    WatchNotifications();
  }
  if (options_.stop_on_signals) {
    signals_.emplace(io_, SIGINT, SIGTERM);
    signals_->async_wait([this](beast::error_code, int) { io_.stop(); });
  }
  Accept();
  return Status::Ok();
}

void Server::Impl::Accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<HttpSession>(this, std::move(socket))->Read();
    if (acceptor_.is_open()) Accept();
  });
}

void Server::Impl::WatchNotifications() {
  listener_socket_->async_wait(net::posix::stream_descriptor::wait_read, [this](beast::error_code ec) {
    if (ec) return;
    // Its own commits' notifications would cost a catch-up's query each.
    Result<std::vector<std::string>> spaces = listener_->Take(db_->session_pid());
    if (!spaces.ok()) {
      std::fprintf(stderr, "keepstate-server: %s (other processes' commits are no longer heard)\n",
                   spaces.status().ToString().c_str());
      return;
    }
    for (const std::string& name : *spaces) {
      WhenDatabaseFree([this, name] {
        Space* space = OpenSpace(name);
        if (space == nullptr) return;  // not open here: it will restore when asked for
        Result<bool> caught_up = space->CatchUp();  // pokes its subscribers if it moved
        if (!caught_up.ok()) {
          std::fprintf(stderr, "keepstate-server: catching up with %s: %s\n", name.c_str(),
                       caught_up.status().ToString().c_str());
        }
      });
    }
    WatchNotifications();
  });
}

Result<Space*> Server::Impl::SpaceNamed(const std::string& name) {
  auto it = spaces_.find(name);
  if (it != spaces_.end()) return it->second.get();
  KEEPSTATE_ASSIGN_OR_RETURN(std::unique_ptr<SpaceStore> store, db_->Open(name));
  KEEPSTATE_ASSIGN_OR_RETURN(std::unique_ptr<Space> space,
                             Space::Open(std::move(store), options_.writer_id, options_.limits));
  return spaces_.emplace(name, std::move(space)).first->second.get();
}

void Server::Impl::ScheduleFlush(Space* space) {
  flush_wanted_.insert(space);
  if (gathering_) {
    if (QueuedPushes() < gather_target_) return;
    gathering_ = false;
    gather_timer_.cancel();
  }
  if (start_posted_ || committing_ != nullptr) return;  // Written starts it
  start_posted_ = true;
  net::post(io_, [this] {
    start_posted_ = false;
    StartCommits();
  });
}

void Server::Impl::StartCommits() {
  while (committing_ == nullptr && !flush_wanted_.empty()) {
    Space* space = *flush_wanted_.begin();
    flush_wanted_.erase(flush_wanted_.begin());
    // nullptr: its pushes were answered without a write.
    if (std::unique_ptr<Space::GroupCommit> group = space->Prepare()) Write(space, std::move(group));
  }
}

void Server::Impl::Write(Space* space, std::unique_ptr<Space::GroupCommit> group) {
  committing_ = space;
  net::post(committer_, [this, space, group = std::move(group)]() mutable {
    const auto start = std::chrono::steady_clock::now();
    const Status written = group->Write();
    last_write_ = std::chrono::steady_clock::now() - start;
    net::post(io_, [this, space, group = std::move(group), written]() mutable {
      Written(space, std::move(group), written);
    });
  });
}

void Server::Impl::Written(Space* space, std::unique_ptr<Space::GroupCommit> group, const Status& written) {
  committing_ = nullptr;
  answers_wait_ = true;
  // A conflict (another process committed first) runs the group again.
  if (std::unique_ptr<Space::GroupCommit> again = space->Finish(std::move(group), written)) {
    Write(space, std::move(again));
  } else {
    std::vector<std::function<void()>> waiting = std::move(after_commit_);
    after_commit_.clear();
    for (std::function<void()>& fn : waiting) fn();
    // The group-commit window. The clients just answered tend to push again
    // at once, and would otherwise wait for the whole next write, which the
    // pushes queued meanwhile (or the first of them to come back) start
    // right now: the clients split into groups that alternate, each write
    // taking a part. When a write takes longer than their round trip, the
    // next group waits for them — until as many pushes are queued as are
    // queued now plus those answered, for at most as long as the last
    // write took. (One client alone: its next push starts the write.)
    if (!answers_.empty() && last_write_ > kMinWindow) {
      gathering_ = true;
      gather_target_ = QueuedPushes() + answers_.size();
      gather_timer_.expires_after(std::min<std::chrono::steady_clock::duration>(last_write_, kMaxWindow));
      gather_timer_.async_wait([this](beast::error_code ec) {
        if (ec || !gathering_) return;
        gathering_ = false;
        StartCommits();
      });
    } else {
      StartCommits();
    }
  }
  answers_wait_ = false;
  std::vector<std::function<void()>> answers = std::move(answers_);
  answers_.clear();
  for (std::function<void()>& fn : answers) fn();
}

void Server::Impl::Run() {
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& e) {
      // A handler threw (Boost's allocation failures): report and go on.
      std::fprintf(stderr, "keepstate-server: %s\n", e.what());
    }
  }
}

Server::Server(Database* db, Authorize authorize, ServerOptions options)
    : impl_(std::make_unique<Impl>(db, std::move(authorize), std::move(options))) {}
Server::~Server() = default;
Status Server::Listen() {
  try {
    return impl_->Listen();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot listen: ") + e.what());
  }
}
std::uint16_t Server::port() const { return impl_->port(); }
void Server::Run() { impl_->Run(); }
void Server::Stop() { impl_->Stop(); }

}  // namespace keepstate::server
