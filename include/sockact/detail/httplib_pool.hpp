// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_HTTPLIB_POOL_HPP
#define SOCKACT_DETAIL_HTTPLIB_POOL_HPP

// httplib_server's task queue (<sockact/httplib.hpp>): the threads that serve
// cpp-httplib's connections, started as needed up to a maximum, and the
// hand-over of a thread from an idle keep-alive connection to a waiting one.

#include <httplib.h>
#include <sockact/thread_driver.hpp>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace sockact::detail {

// The threads that serve connections: up to `max`, started as needed. A
// queued connection is registered with the activation as busy (fd -1) until
// its thread has tracked its fd.
class httplib_pool final : public httplib::TaskQueue {
 public:
  /// @param on_idle called on the accept loop's thread between two polls.
  httplib_pool(thread_driver& driver, std::size_t max, std::function<void()> on_idle)
      : driver_(driver), max_(max), on_idle_(std::move(on_idle)) {}
  ~httplib_pool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;
  void on_idle() override {
    if (on_idle_) on_idle_();
  }

  /// Connections wait for a thread and none is on its way: true when the
  /// calling thread's connection is to give its thread up (at most once).
  bool claim_release();

  // What the pool's thread that runs a connection knows about it.
  struct context {
    httplib_pool* pool = nullptr;
    thread_connection* queued = nullptr;  // its registration while it waited
    bool releasing = false;               // claim_release() said yes
  };
  static context& current() noexcept {
    thread_local context c;
    return c;
  }

 private:
  struct job {
    std::function<void()> fn;
    thread_connection queued;
  };
  void work();
  bool run(job& j);

  thread_driver& driver_;
  const std::size_t max_;
  std::function<void()> on_idle_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<job> jobs_;
  std::vector<std::thread> threads_;
  // Under mutex_: threads started, not yet waiting for a job, waiting, and
  // giving their thread up (claim_release()) until they wait again.
  std::size_t started_ = 0, starting_ = 0, idle_ = 0, releasing_ = 0;
  bool stop_ = false;
};

inline void httplib_pool::enqueue(std::function<void()> fn) {
  thread_connection queued = driver_.track(-1);
  queued->request_received();  // busy while it waits: the server is not idle, the drain waits for it
  std::unique_lock<std::mutex> lock(mutex_);
  jobs_.push_back(job{std::move(fn), std::move(queued)});
  if (jobs_.size() > idle_ && started_ < max_) {
#if SOCKACT_HAS_EXCEPTIONS
    try {
      threads_.emplace_back([this] { work(); });
      ++started_;
      ++starting_;
    } catch (const std::system_error&) {
      if (started_ == 0) {  // no thread to run it: run it here
        job j = std::move(jobs_.back());
        jobs_.pop_back();
        lock.unlock();
        (void)run(j);  // never releasing: no thread was started
      }
    }
#else
    threads_.emplace_back([this] { work(); });
    ++started_;
    ++starting_;
#endif
    return;
  }
  cv_.notify_one();
}

inline void httplib_pool::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

inline bool httplib_pool::claim_release() {
  context& c = current();
  std::lock_guard<std::mutex> lock(mutex_);
  if (c.releasing || started_ < max_ || jobs_.size() <= starting_ + idle_ + releasing_) return false;
  ++releasing_;  // until this thread waits again (work()), so one waiting connection frees one thread
  c.releasing = true;
  return true;
}

inline void httplib_pool::work() {
  bool starting = true, releasing = false;
  for (;;) {
    job j;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (starting) --starting_;
      if (releasing) --releasing_;
      starting = false;
      ++idle_;
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // stopping, and nothing left to serve
      j = std::move(jobs_.front());
      jobs_.pop_front();
    }
    releasing = run(j);
  }
}

// Runs one connection; true when it gave its thread up (claim_release()).
inline bool httplib_pool::run(job& j) {
  current() = context{this, &j.queued, false};
  j.fn();  // process_and_close_socket(fd)
  const bool releasing = current().releasing;
  current() = context{};
  j.queued.reset();
  return releasing;
}

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_HTTPLIB_POOL_HPP
