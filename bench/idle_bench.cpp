// idle_tracker's per-request cost: begin() and the guard's end, against the
// least any counting can cost, a relaxed atomic increment and decrement.
// Both share one counter among the threads, as a server's threads share one
// tracker. SPDX-License-Identifier: MIT
#include <sockact/idle.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

namespace {

std::atomic<std::uint64_t> bare_counter{0};
sockact::idle_tracker tracker{std::chrono::seconds(60)};

void atomic_pair(benchmark::State& state) {
  for (auto _ : state) {
    bare_counter.fetch_add(1, std::memory_order_relaxed);
    benchmark::ClobberMemory();
    bare_counter.fetch_sub(1, std::memory_order_relaxed);
  }
}

void idle_begin_end(benchmark::State& state) {
  for (auto _ : state) {
    sockact::idle_tracker::activity a = tracker.begin();
    benchmark::ClobberMemory();
  }  // the guard ends the activity here
  if (state.thread_index() == 0) state.counters["active_after"] = tracker.active();
}

}  // namespace

BENCHMARK(atomic_pair)->ThreadRange(1, 2);
BENCHMARK(idle_begin_end)->ThreadRange(1, 2);

BENCHMARK_MAIN();
