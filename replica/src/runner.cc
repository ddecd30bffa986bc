#include "keepstate/replica/runner.h"

#include <string>
#include <utility>

namespace keepstate::replica {

Runner::Runner(Replica* replica)
    : replica_(replica),
      host_([this](std::uint32_t id) -> Replica* {
        // Calls name their store by the Replica's id: a call started on a
        // Replica that was replaced meanwhile finds none and gets Closed.
        return replica_ != nullptr && replica_->id() == id ? replica_ : nullptr;
      }),
      calls_(&scheduler_, &host_) {}

Runner::~Runner() { scheduler_.Shutdown(); }

Result<sdk::Bytes> Runner::Run(std::string_view name, sdk::Args args) {
  if (replica_ == nullptr || !replica_->open()) return Status::Closed("the runner has no open replica");
  KEEPSTATE_ASSIGN_OR_RETURN(const std::uint32_t id, calls_.Start(name, replica_->id(), args));
  // Run() waits for timers (a mutator may sleep) and returns when nothing
  // can make progress; the call has finished by then unless it waits on
  // something only another party could complete.
  scheduler_.Run();
  while (std::optional<sdk::CallOutcome> outcome = calls_.Take()) {
    if (outcome->id != id) continue;  // a call given up on earlier
    if (!outcome->status.ok()) return std::move(outcome->status);
    return std::move(outcome->result);
  }
  return Status::Busy("mutator \"" + std::string(name) +
                      "\" did not finish: it waits on something no one will complete");
}

}  // namespace keepstate::replica
