// The idle_tracker hot path allocates nothing: a replaced global operator new
// counts allocations during a loop of begin/end (moves and early end() too),
// on one thread and on two. Exit status 0 when none happened.
// SPDX-License-Identifier: MIT
#include <sockact/idle.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>
#include <utility>

namespace {
std::atomic<long> allocations{0};
thread_local bool counting = false;  // only inside the measured loops
}  // namespace

void* operator new(std::size_t n) {
  if (counting) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (counting) allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

long loop(sockact::idle_tracker& t, int n) {
  const long before = allocations.load();
  counting = true;
  for (int i = 0; i < n; ++i) {
    sockact::idle_tracker::activity a = t.begin();
    if (i % 3 == 0) {
      sockact::idle_tracker::activity b = std::move(a);  // moved guard
      b.end();
      b.end();  // idempotent
    } else if (i % 3 == 1) {
      a = t.begin();  // move-assign ends the first
    }
  }
  (void)t.active();
  counting = false;
  return allocations.load() - before;
}

}  // namespace

int main() {
  sockact::idle_tracker t{std::chrono::seconds(60)};
  // The test must be able to fail: prove that the counter sees an allocation.
  // (A call, not a new-expression, which the compiler may elide.)
  counting = true;
  ::operator delete(::operator new(16));
  counting = false;
  if (allocations.exchange(0) != 1) {
    std::fprintf(stderr, "idle_alloc_test: operator new is not counted\n");
    return 2;
  }
  const long single = loop(t, 1000000);
  long other_count = 0;
  std::thread other([&] { other_count = loop(t, 1000000); });
  const long mine = loop(t, 1000000);
  other.join();
  const long multi = mine + other_count;
  std::printf(
      "idle_alloc_test: allocations in 1e6 begin/end: %ld (1 thread), %ld (2 threads); active after: %u\n",
      single, multi, t.active());
  return single == 0 && multi == 0 && t.active() == 0 ? 0 : 1;
}
