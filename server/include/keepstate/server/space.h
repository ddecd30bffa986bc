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
// Lifecycle of a group: prepared (run on the Replica and captured) →
// written (the SQL transaction) → finished (answered). Flush does all three
// in a row; a host that writes on another thread (the commit pipeline,
// http.cc) calls Prepare, GroupCommit::Write there, then Finish, and keeps
// reading pushes meanwhile: they queue for the next group. A commit that finds a newer
// head (another process committed: PostgreSQL) catches up from the database
// (a new Replica restored with the old one as its base, the last ids
// re-read) and runs the group again: the ids tell which mutations the other
// process applied, so none is applied twice. Any other failed commit throws
// the uncommitted state away (restored from the database) and answers 503.
//
// Invariants:
//  - Outside Flush and while not committing(), the Replica holds exactly the
//    committed state of version() (nothing uncommitted), so reads (Pull,
//    Snapshot) see a committed version; while committing() they answer Busy.
//  - clients_[c].last_id is the last id committed for c at version().
//  - A push is answered only by Finish (or Flush), after its group's
//    transaction committed — or with kUnavailable when it did not.
//
// Thread safety: one thread, like the rest of keepstate, except
// GroupCommit::Write, which may run on another thread while the Space's
// thread touches neither this Space (Enqueue excepted) nor its Database.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  struct Pending {
    PushRequest request;
    std::string identity;
    std::function<void(PushResult)> done;
  };

 public:
  // A group of pushes run on the Replica and captured: the SQL transaction
  // that commits it is still to be written. Hosts only Write it and hand it
  // back to Finish; its fields are the Space's.
  class GroupCommit {
   public:
    // Writes the transaction (SpaceStore::Commit): the records, the last ids,
    // failures and changed keys. May run on another thread (see above).
    // Errors: the store's (Conflict: another process committed first).
    Status Write() { return store_->Commit(*batch_, log_); }

   private:
    friend class Space;
    std::vector<Pending> group_;
    std::vector<PushResult> results_;
    std::vector<std::uint64_t> last_before_;  // each push's client's last id before the group
    std::map<std::string, ClientRecord> touched_;
    CommitLog log_;
    SpaceStore* store_ = nullptr;
    std::optional<persistence::WriteBatch> batch_;  // nullopt: nothing to write
    std::uint64_t version_before_ = 0;
    std::uint64_t run_from_ = 0;  // the version its last run started from (a conflict reloads): its patch's base
    int attempts_ = 0;
  };

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
  std::size_t queued() const { return queue_.size(); }
  // Processes every queued push (see the file comment): Prepare, Write,
  // Finish, on this thread.
  void Flush();
  // Takes the queued pushes as one group, runs them on the Replica and
  // captures the commit: the group to Write, after which the Space is
  // committing(); nullptr if there is nothing to write (nothing queued, or
  // every push was answered already: refused, resent, or failed), and
  // while committing() (the queue waits for the Prepare after Finish).
  std::unique_ptr<GroupCommit> Prepare();
  // The outcome of `group`'s Write: answers its pushes (kUnavailable, and
  // the group's state thrown away, if it failed), or, if another process
  // committed first (Conflict), catches up and runs the group again: the
  // group to Write again (nullptr: answered).
  std::unique_ptr<GroupCommit> Finish(std::unique_ptr<GroupCommit> group, const Status& written);
  // Between a Prepare that returned a group and its Finish.
  bool committing() const { return committing_; }
  // Enqueue + Flush.
  PushResult Push(PushRequest request, std::string identity);

  // docs/sync.md's pull for `client`, at the committed version. Errors:
  // the store's (answered 503), Busy (committing()).
  Result<PullResponse> Pull(const PullRequest& request);

  // The committed state as a snapshot file (docs/snapshot-format.md).
  // Errors: NotFound (the space has no state: version 0), Busy
  // (committing()), the Replica's.
  Result<std::string> Snapshot();
  std::uint64_t LastMutationId(const std::string& client) const;

  // Catches up with what another process committed (after a NOTIFY); true
  // if the version changed. Errors: the store's, the Replica's, Busy
  // (committing()).
  Result<bool> CatchUp();

  // What a subscriber hears: the new version and, after a commit of this
  // process that changed at most kMaxPatchKeys keys and kMaxPatchBytes bytes,
  // the poke with those keys' values (EncodePoke with the patch, encoded once
  // for every socket) and the version it follows. No patch otherwise: a
  // catch-up, a larger commit, or the version a new subscriber is told first.
  struct Poke {
    std::uint64_t version = 0;
    std::optional<std::uint64_t> patch_from;
    std::shared_ptr<const std::string> with_patch;  // set with patch_from
  };
  static constexpr std::size_t kMaxPatchKeys = 256;
  static constexpr std::size_t kMaxPatchBytes = 64 << 10;
  // fn after each commit or catch-up that changed the version. Returns an id
  // for Unsubscribe.
  std::uint64_t Subscribe(std::function<void(const Poke&)> fn);
  void Unsubscribe(std::uint64_t id);

 private:
  Space(std::unique_ptr<SpaceStore> store, std::uint64_t writer_id, Limits limits);
  // Runs `group` on the Replica and captures its commit (group->batch_
  // stays nullopt if it processed nothing): the group to Write, or nullptr
  // once answered (nothing to write, or a failure).
  std::unique_ptr<GroupCommit> Run(std::unique_ptr<GroupCommit> group);
  // The mutators, failures and last ids of the group, and the capture.
  // Errors: the Replica's.
  Status RunGroup(GroupCommit& group);
  // After the write (`written`; Ok if there was none): the Replica's
  // CommitDone, the last ids, and each push's response. Errors: `written`'s,
  // the store's (reading resent ids' failures).
  Status CompleteGroup(GroupCommit& group, const Status& written);
  // A failed run or write: the state is restored from the database; a
  // Conflict runs the group again (up to kMaxAttempts), anything else
  // answers kUnavailable.
  std::unique_ptr<GroupCommit> Retry(std::unique_ptr<GroupCommit> group, Status failed);
  // Calls each push's done with its result; pokes if the version moved,
  // with the group's patch if it `committed`.
  void Answer(GroupCommit& group, bool committed);
  // Replaces the Replica by one restored from the store (with the old one
  // as base, so unchanged pages are not read) and re-reads the clients.
  Status Reload();
  void Announce(const PokePatch* patch = nullptr);
  // The patch of `group`'s commit for Announce, or nullopt if it is too large.
  std::optional<PokePatch> PatchOf(const GroupCommit& group) const;

  std::unique_ptr<SpaceStore> store_;
  std::uint64_t writer_id_;
  Limits limits_;
  std::unique_ptr<replica::Replica> replica_;
  replica::Runner runner_;
  std::map<std::string, ClientRecord> clients_;
  std::vector<Pending> queue_;
  bool committing_ = false;
  std::map<std::uint64_t, std::function<void(const Poke&)>> subscribers_;
  std::uint64_t next_subscriber_ = 1;
};

}  // namespace keepstate::server
