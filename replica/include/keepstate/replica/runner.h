// Runner: runs named mutators to completion on a Replica, natively — the
// server and the conformance suite call the app's mutators the way the
// browser module does (sdk::CallQueue over a ReplicaHost), but synchronously:
// Run() drives its own scheduler until the call's outcome arrives.
//
// Invariants:
//  - At most one call is run at a time (Run returns only once it has the
//    outcome of the call it started, or gives up on it).
//  - A call that cannot finish (its fiber waits on a token, channel or lock
//    nobody will complete) is reported as Busy and its outcome, if it ever
//    comes, is dropped; the scheduler is shut down when the Runner goes.
//
// Thread safety: none (single-threaded, like the rest of keepstate).
#pragma once

#include <cstdint>
#include <string_view>

#include "keepstate/replica/replica.h"
#include "keepstate/scheduler/scheduler.h"
#include "keepstate/sdk/module.h"
#include "keepstate/status.h"

namespace keepstate::replica {

class Runner {
 public:
  // REQUIRES: replica (if set) outlives the Runner or is replaced first
  // with set_replica.
  explicit Runner(Replica* replica = nullptr);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // The Replica calls run on from now (a catch-up replaces a host's Replica
  // with a new one; nullptr: none, calls get Closed).
  void set_replica(Replica* replica) { replica_ = replica; }
  Replica* replica() const { return replica_; }

  // Runs mutator `name` with `args` on the replica until it finishes; its
  // bytes, or its error. Its writes land in the replica's store (marking it
  // dirty) as the mutator's transactions commit; an error of a transaction
  // applies nothing of that transaction. Errors: the mutator's own;
  // InvalidArgument (no mutator has that name), Closed (no replica, or not
  // open), Busy (the call could not finish: see the invariants).
  Result<sdk::Bytes> Run(std::string_view name, sdk::Args args);

 private:
  Replica* replica_;
  scheduler::Scheduler scheduler_;
  ReplicaHost host_;
  sdk::CallQueue calls_;
};

}  // namespace keepstate::replica
