#include "keepstate/server/space.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "keepstate/engine/changes.h"

namespace keepstate::server {
namespace {

// Commits that find a newer head, in a row, before a flush gives up (503):
// each one means another process committed; they cannot all keep winning.
constexpr int kMaxAttempts = 16;
// A failure's message as kept and sent: mutators may say anything.
constexpr std::size_t kMaxMessageBytes = 1024;

std::uint64_t NowMs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// `text` as valid UTF-8 without NUL (PostgreSQL's TEXT and JSON need both),
// cut to at most kMaxMessageBytes: other bytes become '?'.
std::string Sanitize(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && out.size() + 4 <= kMaxMessageBytes) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n != 0 && c != 0 && i + n <= text.size();
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(text[i + k]) >> 6) == 0x2;
    if (ok && n == 2) ok = c >= 0xc2;                                                // overlong
    if (ok && n == 3) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);                // overlong, surrogates
    }
    if (ok && n == 4) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90) && c <= 0xf4;   // overlong, > U+10FFFF
    }
    if (ok) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
}

sdk::Args ArgsOf(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

}  // namespace

Space::Space(std::unique_ptr<SpaceStore> store, std::uint64_t writer_id, Limits limits)
    : store_(std::move(store)), writer_id_(writer_id), limits_(limits) {}

Space::~Space() { runner_.set_replica(nullptr); }

Result<std::unique_ptr<Space>> Space::Open(std::unique_ptr<SpaceStore> store, std::uint64_t writer_id, Limits limits) {
  std::unique_ptr<Space> space(new Space(std::move(store), writer_id, limits));
  KEEPSTATE_RETURN_IF_ERROR(space->Reload());
  return space;
}

Status Space::Reload() {
  auto fresh = std::make_unique<replica::Replica>(replica::Replica::OptionsFor(0, 0, writer_id_));
  std::map<std::string, ClientRecord> clients;
  // The state and the last ids from one committed snapshot: last ids newer
  // than the state would skip mutations, older ones would apply some twice.
  KEEPSTATE_RETURN_IF_ERROR(store_->BeginRead());
  Status s = fresh->Restore(*store_, replica_ && replica_->open() ? replica_.get() : nullptr).status();
  if (s.ok()) {
    Result<std::map<std::string, ClientRecord>> read = store_->Clients();
    if (read.ok()) {
      clients = std::move(*read);
    } else {
      s = read.status();
    }
  }
  const Status ended = store_->EndRead();
  KEEPSTATE_RETURN_IF_ERROR(s);
  KEEPSTATE_RETURN_IF_ERROR(ended);
  replica_ = std::move(fresh);
  runner_.set_replica(replica_.get());
  clients_ = std::move(clients);
  return Status::Ok();
}

Result<bool> Space::CatchUp() {
  if (committing_) return Status::Busy("space " + name() + " is committing");
  KEEPSTATE_ASSIGN_OR_RETURN(const std::uint64_t stored, store_->StoredVersion());
  if (stored == version()) return false;
  const std::uint64_t before = version();
  KEEPSTATE_RETURN_IF_ERROR(Reload());
  if (version() == before) return false;
  Announce();
  return true;
}

void Space::Enqueue(PushRequest request, std::string identity, std::function<void(PushResult)> done) {
  queue_.push_back(Pending{std::move(request), std::move(identity), std::move(done)});
}

PushResult Space::Push(PushRequest request, std::string identity) {
  PushResult out;
  Enqueue(std::move(request), std::move(identity), [&out](PushResult r) { out = std::move(r); });
  Flush();
  return out;
}

void Space::Flush() {
  for (std::unique_ptr<GroupCommit> group = Prepare(); group != nullptr;) {
    const Status written = group->Write();
    group = Finish(std::move(group), written);
  }
}

std::unique_ptr<Space::GroupCommit> Space::Prepare() {
  // One group in flight: the queue waits for the next Prepare after Finish.
  if (committing_ || queue_.empty()) return nullptr;
  auto group = std::make_unique<GroupCommit>();
  group->group_ = std::move(queue_);
  queue_.clear();
  group->store_ = store_.get();
  group->version_before_ = version();
  // A gap seen against this process's view may be another process's work
  // that it has not caught up with yet: look before refusing. (A stale view
  // of a resend needs no look: its commit conflicts and runs again.)
  const bool gap = std::any_of(group->group_.begin(), group->group_.end(), [&](const Pending& p) {
    return !p.request.mutations.empty() && p.request.mutations.front().id > LastMutationId(p.request.client) + 1;
  });
  if (gap) {
    Result<std::uint64_t> stored = store_->StoredVersion();
    if (stored.ok() && *stored != version()) Reload().IgnoreError();  // a failure shows in the commit below
  }
  return Run(std::move(group));
}

std::unique_ptr<Space::GroupCommit> Space::Run(std::unique_ptr<GroupCommit> group) {
  group->run_from_ = version();
  group->results_.assign(group->group_.size(), PushResult{});
  group->last_before_.assign(group->group_.size(), 0);
  group->touched_.clear();
  group->log_ = CommitLog{};
  group->batch_.reset();
  const Status ran = RunGroup(*group);
  if (!ran.ok()) return Retry(std::move(group), ran);
  if (!group->batch_) return Finish(std::move(group), Status::Ok());  // nothing to write: answer now
  committing_ = true;
  return group;
}

std::unique_ptr<Space::GroupCommit> Space::Finish(std::unique_ptr<GroupCommit> group, const Status& written) {
  committing_ = false;
  const Status completed = CompleteGroup(*group, written);
  if (!completed.ok()) return Retry(std::move(group), completed);
  Answer(*group, group->batch_.has_value());
  return nullptr;
}

std::unique_ptr<Space::GroupCommit> Space::Retry(std::unique_ptr<GroupCommit> group, Status failed) {
  // Conflict: catch up and run again. Anything else: throw the state the
  // group made away, so that reads never see what was not committed.
  const Status reloaded = Reload();
  if (!reloaded.ok()) {
    failed = reloaded;
  } else if (failed.code() == Code::kConflict && ++group->attempts_ < kMaxAttempts) {
    return Run(std::move(group));
  }
  for (PushResult& r : group->results_) {
    r = PushResult{Refusal::kUnavailable, "the commit failed: " + failed.ToString(), {}};
  }
  Answer(*group, false);
  return nullptr;
}

void Space::Answer(GroupCommit& group, bool committed) {
  for (std::size_t i = 0; i < group.group_.size(); ++i) group.group_[i].done(std::move(group.results_[i]));
  if (version() == group.version_before_) return;
  // Only a commit of its own is a patch: a version reached by catching up is not.
  const bool patch = committed && version() == group.run_from_ + 1 && !subscribers_.empty();
  const std::optional<PokePatch> made = patch ? PatchOf(group) : std::nullopt;
  Announce(made ? &*made : nullptr);
}

std::optional<PokePatch> Space::PatchOf(const GroupCommit& group) const {
  const std::vector<std::string>& keys = group.log_.changed_keys;
  if (keys.size() > kMaxPatchKeys) return std::nullopt;
  PokePatch patch;
  patch.from = group.run_from_;
  std::size_t bytes = 0;
  for (const std::string& key : keys) {
    std::string value;
    const Status got = replica_->Get(false, key, &value);
    if (!got.ok() && !got.IsNotFound()) return std::nullopt;  // the pull says what it is
    bytes += key.size() + (got.ok() ? value.size() : 0);
    if (bytes > kMaxPatchBytes) return std::nullopt;
    patch.entries.emplace_back(key, got.ok() ? std::optional(std::move(value)) : std::nullopt);
  }
  return patch;
}

Status Space::RunGroup(GroupCommit& group) {
  if (!replica_->open() || replica_->dirty()) return Status::Internal("space " + name() + " is not at a committed state");
  std::map<std::string, ClientRecord>& touched = group.touched_;
  CommitLog& log = group.log_;
  bool processed = false;
  KEEPSTATE_RETURN_IF_ERROR(replica_->Watch({engine::KeyRange{}}));  // every key
  for (std::size_t i = 0; i < group.group_.size(); ++i) {
    const PushRequest& request = group.group_[i].request;
    const std::string& identity = group.group_[i].identity;
    ClientRecord current;
    if (auto t = touched.find(request.client); t != touched.end()) {
      current = t->second;
    } else if (auto c = clients_.find(request.client); c != clients_.end()) {
      current = c->second;
    }
    group.last_before_[i] = current.last_id;
    if (!current.identity.empty() && current.identity != identity) {
      group.results_[i] = {Refusal::kForbidden, "client " + request.client + " is bound to another identity", {}};
      continue;
    }
    if (!request.mutations.empty() && request.mutations.front().id > current.last_id + 1) {
      group.results_[i] = {Refusal::kGap,
                           "mutation " + std::to_string(request.mutations.front().id) + " of client " + request.client +
                               " follows a gap: the last processed is " + std::to_string(current.last_id),
                           {}};
      continue;
    }
    for (const Mutation& m : request.mutations) {
      if (m.id <= current.last_id) continue;  // a resend: processed already
      Result<sdk::Bytes> ran = runner_.Run(m.name, ArgsOf(m.args));
      if (!ran.ok()) {
        log.failures.push_back(
            Failure{request.client, m.id, std::string(CodeName(ran.status().code())), Sanitize(ran.status().message())});
      }
      current.last_id = m.id;
      processed = true;
    }
    if (current.last_id != group.last_before_[i]) {
      // The first push that processes anything binds the client.
      current.identity = identity;
      touched[request.client] = current;
    }
  }
  if (!processed) return Status::Ok();
  KEEPSTATE_RETURN_IF_ERROR(replica_->TakeChanges(
      [&](std::string_view key, std::optional<std::string_view>) { log.changed_keys.emplace_back(key); }));
  log.clients = touched;
  // Commit even if no mutation wrote anything: the last ids must land.
  replica_->MarkChanged();
  KEEPSTATE_RETURN_IF_ERROR(replica_->Capture(NowMs()));
  group.batch_ = replica_->batch();
  if (!group.batch_) return Status::Internal("space " + name() + ": a capture without a batch");
  return Status::Ok();
}

Status Space::CompleteGroup(GroupCommit& group, const Status& written) {
  if (group.batch_) {
    KEEPSTATE_RETURN_IF_ERROR(replica_->CommitDone(written));
    KEEPSTATE_RETURN_IF_ERROR(written);
    for (auto& [client, record] : group.touched_) clients_[client] = record;
  }
  KEEPSTATE_RETURN_IF_ERROR(replica_->Watch({}));
  // Answers: each push's failures among its ids — those of this group, and,
  // for resent ids, those stored by earlier commits.
  for (std::size_t i = 0; i < group.group_.size(); ++i) {
    if (group.results_[i].refusal != Refusal::kNone) continue;
    const PushRequest& request = group.group_[i].request;
    PushResponse& response = group.results_[i].response;
    response.version = version();
    response.last_mutation_id = LastMutationId(request.client);
    if (request.mutations.empty()) continue;
    const std::uint64_t first = request.mutations.front().id, last = request.mutations.back().id;
    if (first <= group.last_before_[i]) {
      KEEPSTATE_ASSIGN_OR_RETURN(response.failed,
                                 store_->FailuresByIds(request.client, first, std::min(last, group.last_before_[i])));
    }
    for (const Failure& f : group.log_.failures) {
      if (f.client == request.client && f.id >= first && f.id <= last) response.failed.push_back(f);
    }
  }
  return Status::Ok();
}

std::uint64_t Space::LastMutationId(const std::string& client) const {
  auto it = clients_.find(client);
  return it == clients_.end() ? 0 : it->second.last_id;
}

Result<PullResponse> Space::Pull(const PullRequest& request) {
  if (committing_) return Status::Busy("space " + name() + " is committing");
  PullResponse response;
  response.version = version();
  response.last_mutation_id = LastMutationId(request.client);
  KEEPSTATE_ASSIGN_OR_RETURN(response.failed, store_->FailuresSince(request.client, request.since));
  std::optional<std::vector<std::string>> changed;
  // A client ahead of the server (its database was replaced) starts over.
  if (request.since <= response.version) {
    KEEPSTATE_ASSIGN_OR_RETURN(changed, store_->ChangedKeys(request.since, response.version, limits_.max_keys));
  }
  if (!changed) {
    response.full = true;
    return response;
  }
  std::vector<std::string> keys = std::move(*changed);
  keys.insert(keys.end(), request.keys.begin(), request.keys.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  response.entries.reserve(keys.size());
  for (std::string& key : keys) {
    std::string value;
    const Status got = replica_->Get(false, key, &value);
    if (got.ok()) {
      response.entries.emplace_back(std::move(key), std::move(value));
    } else if (got.IsNotFound()) {
      response.entries.emplace_back(std::move(key), std::nullopt);
    } else if (got.IsInvalidArgument()) {
      response.entries.emplace_back(std::move(key), std::nullopt);  // a key no store can hold is absent
    } else {
      return got;
    }
  }
  return response;
}

Result<std::string> Space::Snapshot() {
  if (committing_) return Status::Busy("space " + name() + " is committing");
  if (version() == 0) return Status::NotFound("space " + name() + " has no state yet");
  KEEPSTATE_ASSIGN_OR_RETURN(const std::uint64_t size, replica_->BeginExport(NowMs()));
  std::string file(size, '\0');
  std::size_t at = 0;
  while (at < file.size()) {
    Result<std::size_t> n =
        replica_->ReadExport(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(file.data()) + at, file.size() - at));
    if (!n.ok() || *n == 0) {
      replica_->EndExport();
      return n.ok() ? Status::Internal("the snapshot export ended early") : n.status();
    }
    at += *n;
  }
  replica_->EndExport();
  return file;
}

std::uint64_t Space::Subscribe(std::function<void(const Poke&)> fn) {
  const std::uint64_t id = next_subscriber_++;
  subscribers_.emplace(id, std::move(fn));
  return id;
}

void Space::Unsubscribe(std::uint64_t id) { subscribers_.erase(id); }

void Space::Announce(const PokePatch* patch) {
  Poke poke{version(), std::nullopt, nullptr};
  if (patch != nullptr) {
    poke.patch_from = patch->from;
    poke.with_patch = std::make_shared<const std::string>(EncodePoke(version(), patch));
  }
  // A subscriber may unsubscribe (or others) while being told.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, fn] : subscribers_) ids.push_back(id);
  for (std::uint64_t id : ids) {
    auto it = subscribers_.find(id);
    if (it != subscribers_.end()) it->second(poke);
  }
}

}  // namespace keepstate::server
