// The one place that knows where the coroutine library lives.
//
// g++ 12 / libc++ >= 14 provide <coroutine> (namespace std); Emscripten
// 3.1.6 ships libc++ 13, which only has <experimental/coroutine> (namespace
// std::experimental). Everything else in keepstate names the types through
// keepstate::scheduler::coro, so the rest of the code never branches on the
// toolchain.
#pragma once

#if defined(__clang__)
// clang 14 warns at every coroutine definition (in the including file, not
// here) that std::experimental coroutines are deprecated. There is no other
// coroutine library in libc++ 13, so the warning is noise; the pragma is
// deliberately not popped so that it covers the coroutines of the includer
// (test files are not built with keepstate_options, which also silences it).
#pragma clang diagnostic ignored "-Wunknown-warning-option"
#pragma clang diagnostic ignored "-Wdeprecated-experimental-coroutine"
#endif

#if __has_include(<coroutine>) && !(defined(_LIBCPP_VERSION) && _LIBCPP_VERSION < 14000)
#include <coroutine>
namespace keepstate::scheduler::coro {
using std::coroutine_handle;
using std::suspend_always;
using std::suspend_never;
}  // namespace keepstate::scheduler::coro
#else
#include <experimental/coroutine>
namespace keepstate::scheduler::coro {
using std::experimental::coroutine_handle;
using std::experimental::suspend_always;
using std::experimental::suspend_never;
}  // namespace keepstate::scheduler::coro
#endif
