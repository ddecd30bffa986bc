// NoSuspendScope violation reporting. See no_suspend.h.
#include "keepstate/scheduler/no_suspend.h"

#include <cstdio>
#include <cstdlib>

namespace keepstate::scheduler {
namespace {

void AbortOnViolation(const char* operation) {
  std::fprintf(stderr,
               "keepstate: %s attempted to suspend inside a NoSuspendScope "
               "(e.g. during a write transaction); this would break serializability\n",
               operation);
  std::abort();
}

NoSuspendViolationHandler g_handler = AbortOnViolation;

}  // namespace

NoSuspendViolationHandler SetNoSuspendViolationHandler(NoSuspendViolationHandler handler) {
  NoSuspendViolationHandler previous = g_handler;
  g_handler = handler != nullptr ? handler : AbortOnViolation;
  return previous;
}

namespace detail {
void ReportSuspendViolation(const char* operation) { g_handler(operation); }
}  // namespace detail

}  // namespace keepstate::scheduler
