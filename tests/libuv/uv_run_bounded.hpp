// Helpers of the libuv tests: uv_run() with a time limit, and tear-down.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_TESTS_UV_RUN_BOUNDED_HPP
#define SOCKACT_TESTS_UV_RUN_BOUNDED_HPP

#include <uv.h>

namespace sockact_test {

/// uv_run() until the loop returns by itself; false if it had to be stopped
/// after `ms`. The guard timer does not keep the loop alive, and is closed
/// again before this returns.
inline bool uv_run_bounded(uv_loop_t* loop, unsigned ms) {
  uv_timer_t guard;
  bool timed_out = false;
  uv_timer_init(loop, &guard);
  guard.data = &timed_out;
  uv_timer_start(
      &guard,
      [](uv_timer_t* t) {
        *static_cast<bool*>(t->data) = true;
        uv_stop(t->loop);
      },
      ms, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&guard));
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return !timed_out;
}

/// Closes every handle still open on `loop` and runs it until their close
/// callbacks are done; for a test's tear-down, after it checked that none was left.
inline void uv_close_everything(uv_loop_t* loop) {
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
}

}  // namespace sockact_test

#endif  // SOCKACT_TESTS_UV_RUN_BOUNDED_HPP
