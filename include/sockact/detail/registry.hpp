// SPDX-License-Identifier: MIT
// Before the guard: in a header-only build <sockact/activation.hpp> ends by
// including the definitions, which include this header; this way its
// declarations come first whichever header a translation unit includes first.
#include <sockact/activation.hpp>

#ifndef SOCKACT_DETAIL_REGISTRY_HPP
#define SOCKACT_DETAIL_REGISTRY_HPP

// The connections being served, with their request and send deadlines, and
// the one copy of "are we draining" that other threads read. Its owner, the
// activation, runs the drain policy on the driver's thread and tells it the
// lifecycle's phase (publish()); the connections' own threads add, remove and
// report.

#include <sockact/detail/lingerer.hpp>
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sockact {
namespace detail {

class connection_registry;

struct connection_node : std::enable_shared_from_this<connection_node> {
  enum : unsigned {
    sent = 1u,             // at least one byte arrived
    in_request = 2u,       // a request has begun and its response is not sent yet
    head_done = 4u,        // the current request's head arrived
    request_done = 8u,     // the current request arrived whole
    close_pending = 16u,   // a close was dispatched and has not run yet
    reading = 32u,         // a read is in flight (read_started()): it may hold bytes not yet reported
    close_deferred = 64u,  // an idle close waits for the interrupted read's completion
    output = 128u          // registered, or a response sent, since the walk last saw the send queue
  };
  connection_registry* owner = nullptr;
  int fd = -1;
  std::size_t index = 0;  // in the registry; under the registry mutex
  std::atomic<bool> alive{true};
  std::atomic<unsigned> flags{output};
  std::atomic<long long> request_began_ms{0};      // steady clock, for the request deadlines
  close_reason deferred_why = close_reason::idle;  // with close_deferred; the connection's own context
  idle_tracker::activity busy;                     // the connection's own thread only
  std::unique_ptr<connection_closer> closer;
  // SEND_TIMEOUT: the send queue as last seen, and since when it has not
  // moved (0: empty or moving). Written by the driver's walk only.
  int send_queue = 0;
  std::atomic<long long> stalled_since_ms{0};
};

inline long long steady_ms(std::chrono::steady_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Bytes the kernel holds for this connection that the application has not read.
inline int unread_bytes(int fd) noexcept {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0) return 0;
  return n;
}

// Bytes written to this connection that the peer has not taken yet (TCP: not
// yet acknowledged; unix: not yet read).
inline int unsent_bytes(int fd) noexcept {
  int n = 0;
  if (::ioctl(fd, TIOCOUTQ, &n) != 0) return 0;
  return n;
}

// Closing with a zero linger time resets the connection: what it could not
// send is dropped at once instead of being retried to a peer that never reads.
inline void reset_on_close(int fd) noexcept {
  const ::linger zero{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &zero, sizeof zero);
  ::shutdown(fd, SHUT_RDWR);  // a connection, never a listener: wakes a blocked writer or reader
}

class connection_registry {
 public:
  using clock = lifecycle::clock;
  using closes = std::vector<std::pair<std::shared_ptr<connection_node>, close_reason>>;

  connection_registry(const activation_config& config, lifecycle& lc, lingerer& linger) noexcept
      : config_(config), lifecycle_(lc), lingerer_(linger) {}

  // Any thread: a connection accepted.
  std::shared_ptr<connection_node> add(int fd, std::unique_ptr<connection_closer> closer) {
    auto node = std::make_shared<connection_node>();
    node->owner = this;
    node->fd = fd;
    node->closer = std::move(closer);
    std::lock_guard<std::mutex> lock(mutex_);
    node->index = nodes_.size();
    nodes_.push_back(node);
    if (idle_listening_) {
      // A connection during an idle drain: the server is not idle any more.
      // The driver's thread makes the lifecycle serve again (take_resume());
      // until then this one is not closed as a drain's new connection.
      idle_listening_ = false;
      resume_pending_ = true;
      draining_.store(false, std::memory_order_release);
    }
    return node;
  }

  // Any thread: the connection's handle was destroyed.
  void remove(connection_node& node) noexcept {
    node.alive.store(false);
    node.busy.end();
    std::lock_guard<std::mutex> lock(mutex_);
    if (!registered(node)) return;
    const std::size_t i = node.index;
    if (i + 1 != nodes_.size()) {
      nodes_[i] = std::move(nodes_.back());
      nodes_[i]->index = i;
    }
    nodes_.pop_back();
  }

  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return nodes_.size();
  }

  idle_tracker& tracker() noexcept { return lifecycle_.tracker(); }

  /// Whether the server is draining, for every thread: the lifecycle's phase
  /// as last published, unless a connection arrived during an idle drain since.
  bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }

  // The driver's thread, after each lifecycle step: what add() and draining() read of it.
  void publish() {
    std::lock_guard<std::mutex> lock(mutex_);
    sync_phase();
  }

  // The driver's thread: whether add() saw a connection during an idle drain
  // (a resume is pending, until take_resume()).
  bool resume_pending() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return resume_pending_;
  }

  // The driver's thread: a connection tracked during an idle drain makes the
  // lifecycle serve again. True when it did.
  bool take_resume(clock::time_point now) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!resume_pending_) return false;
    resume_pending_ = false;
    const bool resumed = lifecycle_.resume(now);
    sync_phase();
    return resumed;
  }

  /// The driver's thread: the connections that `a` (the drain's step) and
  /// the request and send deadlines close now, and why. `close_idle` and
  /// `close_new`: the drain closes connections between requests, and ones
  /// that sent nothing. The syscalls (the send and receive queues) are made
  /// outside the lock, on a snapshot of the connections that need a look:
  /// adds and removes never wait for them.
  closes due(const lifecycle_actions& a, bool close_idle, bool close_new, clock::time_point now) {
    const long long now_ms = steady_ms(now);
    const long long head_ms = config_.lifecycle.headers_timeout.count();
    const long long req_ms = config_.lifecycle.request_timeout.count();
    const long long send_ms = config_.lifecycle.send_timeout.count();
    const bool draining_now = draining();
    std::vector<look> looks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& n : nodes_) {
        const unsigned f = n->flags.load(std::memory_order_acquire);
        if ((f & connection_node::close_pending) != 0 && !a.close_all) continue;
        look l{n};
        const bool busy = (f & connection_node::in_request) != 0;
        const bool sent = (f & connection_node::sent) != 0;
        // SEND_TIMEOUT needs the send queue only where output may wait: a
        // response being written, one sent since the last look, or a queue
        // that was not empty then (its progress is watched).
        if (send_ms > 0 &&
            (busy || n->send_queue > 0 ||
             (n->flags.fetch_and(~unsigned{connection_node::output}) & connection_node::output) != 0))
          l.send = true;
        if (a.close_all) {
          l.why = close_reason::shutdown_timeout;
        } else if (busy) {
          const long long age = now_ms - n->request_began_ms.load(std::memory_order_relaxed);
          if (head_ms > 0 && (f & connection_node::head_done) == 0 && age >= head_ms)
            l.why = close_reason::headers_timeout;
          else if (req_ms > 0 && (f & connection_node::request_done) == 0 && age >= req_ms)
            l.why = close_reason::request_timeout;
        } else if (draining_now && (sent ? close_idle : close_new)) {
          l.idle = true;  // unless bytes wait in its socket: a request begun
          l.why = sent ? close_reason::idle : close_reason::unused;
        }
        if (l.send || l.why) looks.push_back(std::move(l));
      }
    }
    for (look& l : looks) {
      if (l.send) l.queued = unsent_bytes(l.node->fd);
      if (l.idle) l.unread = unread_bytes(l.node->fd);
    }
    closes out;
    std::lock_guard<std::mutex> lock(mutex_);
    for (look& l : looks) {
      connection_node& n = *l.node;
      // Removed (or closed) meanwhile: its fd may be another's by now.
      if (!n.alive.load() || !registered(n)) continue;
      if (l.send && send_stalled(n, l.queued, now_ms, send_ms))
        out.emplace_back(std::move(l.node), close_reason::send_timeout);
      else if (l.why && !(l.idle && l.unread > 0))
        out.emplace_back(std::move(l.node), *l.why);
    }
    return out;
  }

  // Runs in the connection's own context, right before its close function:
  // true when it is still to be closed for `why`.
  bool close_prepare(connection_node& n, close_reason why) {
    n.flags.fetch_and(~unsigned{connection_node::close_pending}, std::memory_order_acq_rel);
    if (!n.alive.load(std::memory_order_acquire)) return false;
    const unsigned f = n.flags.load(std::memory_order_acquire);
    switch (why) {
      case close_reason::idle:
      case close_reason::unused:
        // Bytes that came in since the decision make it busy again: serve them.
        if ((f & connection_node::in_request) != 0 || unread_bytes(n.fd) > 0) return false;
        // A read in flight may already hold the first bytes of a request (an
        // Asio read completes in the reactor before its handler runs here):
        // cancel it, and decide when its completion tells (read_finished()).
        if ((f & connection_node::reading) != 0 && n.closer->interrupt()) {
          n.deferred_why = why;
          n.flags.fetch_or(connection_node::close_deferred | connection_node::close_pending,
                           std::memory_order_acq_rel);
          return false;
        }
        break;
      case close_reason::headers_timeout:
        if ((f & connection_node::in_request) == 0 || (f & connection_node::head_done) != 0) return false;
        break;
      case close_reason::request_timeout:
        if ((f & connection_node::in_request) == 0 || (f & connection_node::request_done) != 0) return false;
        break;
      case close_reason::send_timeout:
        reset_on_close(n.fd);
        n.alive.store(false, std::memory_order_release);
        return true;
      case close_reason::shutdown_timeout:
        if (stalled_for_ms(n) >= 1000) {  // its peer stopped reading: nothing to wait for
          reset_on_close(n.fd);
          n.alive.store(false, std::memory_order_release);
          return true;
        }
        break;
      case close_reason::app:
        break;
    }
    if ((why == close_reason::headers_timeout || why == close_reason::request_timeout) &&
        !config_.timeout_reply.empty())
      (void)::send(n.fd, config_.timeout_reply.data(), config_.timeout_reply.size(),
                   MSG_DONTWAIT | MSG_NOSIGNAL);
    // FIN, then the lingering close; a closer that asked to hear when the
    // linger is over (the thread drivers shut the read side then) hears it
    // in the connection's own context, if the connection is still there.
    std::function<void()> over;
    if (n.closer->lingers())
      over = [weak = std::weak_ptr<connection_node>(n.shared_from_this())] {
        if (const std::shared_ptr<connection_node> node = weak.lock()) node->closer->linger_over(node);
      };
    lingerer_.shutdown(n.fd, std::move(over));
    n.alive.store(false, std::memory_order_release);
    return true;
  }

 private:
  // What due() looks at outside the lock, for one connection.
  struct look {
    std::shared_ptr<connection_node> node;
    std::optional<close_reason> why{};  // the decision, unless its send queue decides otherwise
    bool send = false;                  // look at its send queue
    bool idle = false;                  // `why` is the drain's, unless bytes wait in its socket
    int queued = 0, unread = 0;
  };

  // Under mutex_.
  bool registered(const connection_node& n) const noexcept {
    return n.index < nodes_.size() && nodes_[n.index].get() == &n;
  }

  // Under mutex_: the phase that add() and draining() read.
  void sync_phase() {
    const bool stopping = lifecycle_.current() != lifecycle::phase::serving;
    draining_.store(stopping && !resume_pending_, std::memory_order_release);
    idle_listening_ = lifecycle_.draining() && lifecycle_.listening() && !resume_pending_;
  }

  static long long stalled_for_ms(const connection_node& n) {
    const long long since = n.stalled_since_ms.load(std::memory_order_relaxed);
    return since == 0 ? 0 : steady_ms(clock::now()) - since;
  }

  // SEND_TIMEOUT: whether `n`'s unsent output (`queued` bytes now) has not
  // moved for `limit_ms`. Progress is a change of the send queue (it shrinks
  // as the peer takes data, and changes as the server writes more): a client
  // that reads, however slowly, moves it; one that never reads leaves it full.
  static bool send_stalled(connection_node& n, int queued, long long now_ms, long long limit_ms) {
    const long long since = n.stalled_since_ms.load(std::memory_order_relaxed);
    if (queued <= 0 || queued != n.send_queue || since == 0) {
      n.send_queue = queued;
      n.stalled_since_ms.store(queued > 0 ? now_ms : 0, std::memory_order_relaxed);
      return false;
    }
    return now_ms - since >= limit_ms;
  }

  const activation_config& config_;
  lifecycle& lifecycle_;
  lingerer& lingerer_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<connection_node>> nodes_;
  bool idle_listening_ = false;  // under mutex_: an idle drain that a new connection ends
  bool resume_pending_ = false;  // under mutex_: add() saw one; take_resume() applies it
  std::atomic<bool> draining_{false};
};

}  // namespace detail
}  // namespace sockact

#endif  // SOCKACT_DETAIL_REGISTRY_HPP
