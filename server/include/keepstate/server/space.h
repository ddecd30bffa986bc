// Space: one shared store on the server (docs/sync.md) — a native
// replica::Replica restored from the space's SpaceStore, the clients' last
// mutation ids and bindings in memory, and a Runner that runs the app's
// mutators on the Replica.
//
// Pushes are queued (Enqueue) and processed together by Flush: every
// mutation not yet processed runs in server order, failures are recorded,
// and ONE commit (records + last ids + failures + changed keys, one SQL
// transaction) covers the whole group; only then is any push answered. A
// host that enqueues the pushes that arrive while a flush is pending gets
// group commit: that is what makes the commit cost per mutation small.
//
// Lifecycle of a flush: run → commit → answered. A commit that finds a newer
// head (another process committed: PostgreSQL) catches up from the database
// (a new Replica restored with the old one as its base, the last ids
// re-read) and runs the group again: the ids tell which mutations the other
// process applied, so none is applied twice. Any other failed commit throws
// the uncommitted state away (restored from the database) and answers 503.
//
// Invariants:
//  - Outside Flush, the Replica holds exactly the committed state of
//    version() (nothing uncommitted), so reads (Pull, Snapshot) see a
//    committed version.
//  - clients_[c].last_id is the last id committed for c at version().
//
// Thread safety: none (one thread, like the rest of keepstate).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "keepstate/replica/replica.h"
#include "keepstate/replica/runner.h"
#include "keepstate/server/protocol.h"
#include "keepstate/server/space_store.h"
#include "keepstate/status.h"

namespace keepstate::server {

// Why a push was not processed (kNone: it was).
enum class Refusal {
  kNone,
  kForbidden,    // the client is bound to another identity (403)
  kGap,          // the first id is above last + 1 (409)
  kUnavailable,  // the commit failed (503); nothing of it was applied
};

struct PushResult {
  Refusal refusal = Refusal::kNone;
  std::string message;    // why, if refused
  PushResponse response;  // if not refused
};

class Space {
 public:
  // Restores the space's state from `store` (empty if it has none).
  // writer_id: unique among the processes sharing the database (pack keys).
  // Errors: as Replica::Restore and the store's.
  static Result<std::unique_ptr<Space>> Open(std::unique_ptr<SpaceStore> store, std::uint64_t writer_id,
                                             Limits limits = {});
  ~Space();

  const std::string& name() const { return store_->space(); }
  std::uint64_t version() const { return replica_->version(); }

  // Queues a push from `identity` (the token's, see auth.h); `done` is
  // called from Flush with its result.
  void Enqueue(PushRequest request, std::string identity, std::function<void(PushResult)> done);
  bool flush_pending() const { return !queue_.empty(); }
  // Processes every queued push (see the file comment).
  void Flush();
  // Enqueue + Flush.
  PushResult Push(PushRequest request, std::string identity);

  // docs/sync.md's pull for `client`, at the committed version. Errors:
  // the store's (answered 503).
  Result<PullResponse> Pull(const PullRequest& request);

  // The committed state as a snapshot file (docs/snapshot-format.md).
  // Errors: NotFound (the space has no state: version 0), the Replica's.
  Result<std::string> Snapshot();
  std::uint64_t LastMutationId(const std::string& client) const;

  // Catches up with what another process committed (after a NOTIFY); true
  // if the version changed. Errors: the store's, the Replica's.
  Result<bool> CatchUp();

  // fn(version) after each commit or catch-up that changed the version.
  // Returns an id for Unsubscribe.
  std::uint64_t Subscribe(std::function<void(std::uint64_t)> fn);
  void Unsubscribe(std::uint64_t id);

 private:
  struct Pending {
    PushRequest request;
    std::string identity;
    std::function<void(PushResult)> done;
  };

  Space(std::unique_ptr<SpaceStore> store, std::uint64_t writer_id, Limits limits);
  // Runs the group and commits it. Errors: Conflict (catch up and redo),
  // others (the state is thrown away).
  Status RunAndCommit(std::vector<Pending>& group, std::vector<PushResult>& results);
  // Replaces the Replica by one restored from the store (with the old one
  // as base, so unchanged pages are not read) and re-reads the clients.
  Status Reload();
  void Announce();

  std::unique_ptr<SpaceStore> store_;
  std::uint64_t writer_id_;
  Limits limits_;
  std::unique_ptr<replica::Replica> replica_;
  replica::Runner runner_;
  std::map<std::string, ClientRecord> clients_;
  std::vector<Pending> queue_;
  std::map<std::uint64_t, std::function<void(std::uint64_t)>> subscribers_;
  std::uint64_t next_subscriber_ = 1;
};

}  // namespace keepstate::server
