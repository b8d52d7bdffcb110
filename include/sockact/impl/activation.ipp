// SPDX-License-Identifier: MIT
// The definitions of <sockact/activation.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_ACTIVATION_IPP
#define SOCKACT_IMPL_ACTIVATION_IPP

#include <sockact/activation.hpp>
#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/listen.hpp>
#include <sockact/notify.hpp>
#include <sockact/socket_info.hpp>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact {

SOCKACT_DECL const char* to_string(close_reason r) noexcept {
  switch (r) {
    case close_reason::app:
      return "closed by the application";
    case close_reason::idle:
      return "idle while draining";
    case close_reason::unused:
      return "sent nothing while draining";
    case close_reason::headers_timeout:
      return "HEADERS_TIMEOUT";
    case close_reason::request_timeout:
      return "REQUEST_TIMEOUT";
    case close_reason::shutdown_timeout:
      return "SHUTDOWN_TIMEOUT";
    case close_reason::send_timeout:
      return "SEND_TIMEOUT";
  }
  return "?";
}

SOCKACT_DECL activation_config activation_config::http(std::string address) {
  activation_config c;
  c.timeout_reply = http_timeout_reply;
  c.listen.address = std::move(address);
  return c;
}

namespace detail {

struct connection_node {
  enum : unsigned {
    sent = 1u,            // at least one byte arrived
    in_request = 2u,      // a request has begun and its response is not sent yet
    head_done = 4u,       // the current request's head arrived
    request_done = 8u,    // the current request arrived whole
    close_pending = 16u,  // a close was dispatched and has not run yet
    reading = 32u,        // a read is in flight (read_started()): it may hold bytes not yet reported
    close_deferred = 64u  // an idle close waits for the interrupted read's completion
  };
  activation_state* owner = nullptr;
  int fd = -1;
  std::size_t index = 0;  // in the registry; under the registry mutex
  std::atomic<bool> alive{true};
  std::atomic<unsigned> flags{0};
  std::atomic<long long> request_began_ms{0};      // steady clock, for the request deadlines
  close_reason deferred_why = close_reason::idle;  // with close_deferred; the connection's own context
  idle_tracker::activity busy;                     // the connection's own thread only
  std::unique_ptr<connection_closer> closer;
  // SEND_TIMEOUT: the send queue as last seen, and since when it has not
  // moved (0: empty or moving). Written by the driver's walk only.
  int send_queue = 0;
  std::atomic<long long> stalled_since_ms{0};
};

SOCKACT_DECL long long steady_ms(std::chrono::steady_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Bytes the kernel holds for this connection that the application has not read.
SOCKACT_DECL int unread_bytes(int fd) noexcept {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0) return 0;
  return n;
}

// Bytes written to this connection that the peer has not taken yet (TCP: not
// yet acknowledged; unix: not yet read).
SOCKACT_DECL int unsent_bytes(int fd) noexcept {
  int n = 0;
  if (::ioctl(fd, TIOCOUTQ, &n) != 0) return 0;
  return n;
}

// Closing with a zero linger time resets the connection: what it could not
// send is dropped at once instead of being retried to a peer that never reads.
SOCKACT_DECL void reset_on_close(int fd) noexcept {
  const ::linger zero{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &zero, sizeof zero);
  ::shutdown(fd, SHUT_RDWR);  // a connection, never a listener: wakes a blocked writer or reader
}

SOCKACT_DECL std::string short_program_name() {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return ::program_invocation_short_name;
#else
  return "sockact";
#endif
}

SOCKACT_DECL void default_log(const std::string& program, const std::string& line) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), line.c_str());
}

class activation_state {
 public:
  using clock = lifecycle::clock;

  activation_state(std::vector<server_socket> sockets, const activation_config& config, bool activated,
                   std::vector<int> listening)
      : config_(config),
        sockets_(std::move(sockets)),
        lifecycle_(config.lifecycle, activated, std::move(listening)),
        activated_(activated) {}

  ~activation_state() {
    for (const lingerer& l : lingering_) ::close(l.fd);
  }

  void log(const std::string& line) const {
    if (config_.log != nullptr)
      config_.log(line);
    else
      default_log(program(), line);
  }

  std::string program() const { return config_.program.empty() ? short_program_name() : config_.program; }

  const activation_config& config() const noexcept { return config_; }
  std::vector<server_socket>& sockets() noexcept { return sockets_; }
  lifecycle& state() noexcept { return lifecycle_; }
  bool activated() const noexcept { return activated_; }
  bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }

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

  void remove(connection_node& node) noexcept {
    node.alive.store(false, std::memory_order_release);
    node.busy.end();
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t i = node.index;
    if (i >= nodes_.size() || nodes_[i].get() != &node) return;
    if (i + 1 != nodes_.size()) {
      nodes_[i] = std::move(nodes_.back());
      nodes_[i]->index = i;
    }
    nodes_.pop_back();
  }

  std::size_t open() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return nodes_.size();
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
    graceful_shutdown(n.fd);
    n.alive.store(false, std::memory_order_release);
    return true;
  }

  // FIN after what was written; a duplicate of the fd stays with us to read
  // and discard what the client still sends, so that closing does not reset.
  void graceful_shutdown(int fd) {
    const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    ::shutdown(fd, SHUT_WR);  // a connection, never a listener
    if (dup < 0) return;
    std::lock_guard<std::mutex> lock(linger_mutex_);
    lingering_.push_back({dup, clock::now() + config_.lifecycle.linger});
  }

  // Reads what waits on the lingering fds; closes those at EOF, error or deadline.
  void service_lingering(clock::time_point now, bool final_pass) {
    std::lock_guard<std::mutex> lock(linger_mutex_);
    char buf[4096];
    for (std::size_t i = 0; i < lingering_.size();) {
      bool done = now >= lingering_[i].until || final_pass;
      for (int reads = 0; !done && reads < 16; ++reads) {
        const ssize_t r = ::recv(lingering_[i].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
        done = true;  // EOF or error
      }
      if (done) {
        ::close(lingering_[i].fd);
        lingering_[i] = lingering_.back();
        lingering_.pop_back();
      } else {
        ++i;
      }
    }
  }

  bool lingering() const { return lingering_count() > 0; }
  std::size_t lingering_count() const {
    std::lock_guard<std::mutex> lock(linger_mutex_);
    return lingering_.size();
  }

  // Waits (blocking, bounded) for the lingering connections to close.
  void finish_lingering(clock::time_point until) {
    for (;;) {
      const clock::time_point now = clock::now();
      service_lingering(now, now >= until);
      if (!lingering() || now >= until) return;
      std::vector<pollfd> fds;
      {
        std::lock_guard<std::mutex> lock(linger_mutex_);
        for (const lingerer& l : lingering_) fds.push_back(pollfd{l.fd, POLLIN, 0});
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
      ::poll(fds.data(), fds.size(), static_cast<int>(left > 100 ? 100 : left + 1));
    }
  }

  clock::time_point next_deadline(clock::time_point now) const {
    clock::time_point t = lifecycle_.next_deadline(now);
    const bool busy_closing = draining() || lingering();
    const bool connections = open() > 0;
    // While draining or lingering, look again soon: connections close on other
    // threads and clients send their FIN. While request deadlines run, often
    // enough that they pass on time.
    if (busy_closing)
      t = std::min(t, now + std::chrono::milliseconds(20));
    else if (watch_requests() && connections)
      t = std::min(t, now + std::chrono::milliseconds(250));
    // Requests begin and end between two timer events, where a driver does not
    // look: while connections are open, look every check_interval(), so that
    // the exit comes at most that late after the last request, as promised.
    const idle_tracker& tracker = lifecycle_.tracker();
    if (tracker.enabled() && lifecycle_.current() == lifecycle::phase::serving && connections)
      t = std::min(t, now + tracker.check_interval());
    return t;
  }

  // Closes the listening sockets still held here; never shutdown(2): the
  // manager keeps its copies and starts the service again on the next client.
  void close_listeners() noexcept {
    for (server_socket& l : sockets_)
      if (l.info.listening) l.fd.reset();
  }

  bool watch_requests() const noexcept {
    return config_.lifecycle.headers_timeout.count() > 0 || config_.lifecycle.request_timeout.count() > 0 ||
           config_.lifecycle.send_timeout.count() > 0;
  }

  // What a driver does with the outcome of an event.
  using step_result = activation::step_result;

  step_result on_timer(clock::time_point now) {
    take_resume(now);
    return apply(lifecycle_.on_timer(now), now);
  }
  step_result on_signal(int signo, clock::time_point now) {
    take_resume(now);
    const bool draining_before = lifecycle_.draining();
    lifecycle_actions a = lifecycle_.on_signal(signo, now);
    if (draining_before && a.close_all)
      cut_ = true;  // a second signal: no lingering either
    else if (draining_before && a.stop_accepting)
      log(std::string(to_string(signo == SIGINT ? stop_reason::sigint : stop_reason::sigterm)) +
          " during the idle drain: answering what was received, then exiting");
    return apply(a, now);
  }

  // After the loop: the connections closed by the library linger (bounded),
  // unless a second signal asked to stop at once.
  void finish() { finish_lingering(cut_ ? clock::now() : clock::now() + config_.lifecycle.linger); }

  void ready() {
    std::string status = "serving";
    for (const server_socket& l : sockets_) status += " " + l.name;
    lifecycle_.ready(status);
  }

 private:
  // On the driver's thread: a connection tracked during an idle drain (add())
  // makes the lifecycle serve again.
  void take_resume(clock::time_point now) {
    bool resumed = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!resume_pending_) return;
      resume_pending_ = false;
      resumed = lifecycle_.resume(now);
      if (resumed) new_closed_ = false;
      sync_phase();
    }
    // Outside the lock: the log function is the application's.
    if (resumed) log("a new connection during the idle drain: serving again");
  }

  // Under mutex_: what add() and keep_alive() read of the lifecycle.
  void sync_phase() {
    const bool stopping = lifecycle_.current() != lifecycle::phase::serving;
    draining_.store(stopping && !resume_pending_, std::memory_order_release);
    idle_listening_ = lifecycle_.draining() && lifecycle_.listening() && !resume_pending_;
  }

  step_result apply(lifecycle_actions a, clock::time_point now) {
    step_result r;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sync_phase();
    }
    if (lifecycle_.current() == lifecycle::phase::serving) drain_logged_ = false;
    if (a.stop_accepting) r.stop_accepting = true;
    if (lifecycle_.current() != lifecycle::phase::serving && !drain_logged_) {
      drain_logged_ = true;
      if (const auto why = lifecycle_.reason())
        log(std::string("stopping (") + to_string(*why) + "), " + std::to_string(open()) +
            " connection(s) open" +
            (lifecycle_.listening() ? "; still accepting: a new connection resumes serving" : ""));
    }
    // The walk: one pass over a snapshot, closes dispatched outside the lock
    // (an inline close destroys the connection, which takes the lock).
    std::vector<std::pair<std::shared_ptr<connection_node>, close_reason>> closes;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const long long now_ms = steady_ms(now);
      const long long head_ms = config_.lifecycle.headers_timeout.count();
      const long long req_ms = config_.lifecycle.request_timeout.count();
      const long long send_ms = config_.lifecycle.send_timeout.count();
      for (const auto& n : nodes_) {
        const unsigned f = n->flags.load(std::memory_order_acquire);
        if ((f & connection_node::close_pending) != 0 && !a.close_all) continue;
        if (send_ms > 0 && send_stalled(*n, now_ms, send_ms)) {
          closes.emplace_back(n, close_reason::send_timeout);
          continue;
        }
        const bool busy = (f & connection_node::in_request) != 0;
        const bool sent = (f & connection_node::sent) != 0;
        if (a.close_all) {
          closes.emplace_back(n, close_reason::shutdown_timeout);
        } else if (busy) {
          const long long age = now_ms - n->request_began_ms.load(std::memory_order_relaxed);
          if (head_ms > 0 && (f & connection_node::head_done) == 0 && age >= head_ms)
            closes.emplace_back(n, close_reason::headers_timeout);
          else if (req_ms > 0 && (f & connection_node::request_done) == 0 && age >= req_ms)
            closes.emplace_back(n, close_reason::request_timeout);
        } else if (draining()) {
          const bool close_it = sent ? (a.close_idle || lifecycle_.draining()) : a.close_new || new_closed_;
          if (close_it && unread_bytes(n->fd) == 0)
            closes.emplace_back(n, sent ? close_reason::idle : close_reason::unused);
        }
      }
    }
    if (a.close_new) new_closed_ = true;
    for (auto& [n, why] : closes) {
      n->flags.fetch_or(connection_node::close_pending, std::memory_order_acq_rel);
      n->closer->dispatch(n, why);
    }
    service_lingering(now, false);
    if (lifecycle_.draining()) {
      // Done when nothing is open and nothing lingers: the listeners of an
      // idle drain stay open until then, so a client arriving meanwhile is
      // served at once instead of waiting for the linger and a cold start.
      // The lifecycle runs the stop hook and the log function, which are the
      // application's: outside the lock. A connection that add() registers
      // meanwhile was accepted before the listeners close: the drain serves it.
      std::size_t open_now = 0;
      bool resuming = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        open_now = nodes_.size();
        resuming = resume_pending_;
      }
      if (!resuming) {
        const lifecycle_actions more = lifecycle_.on_connections(open_now + lingering_count());
        if (more.stop_accepting) {
          r.stop_accepting = true;
          log("idle: nothing open and no one waiting; exiting");
        }
        a |= more;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      sync_phase();
    }
    if (a.finished || lifecycle_.current() == lifecycle::phase::done) {
      r.finished = true;
      r.stop_accepting = true;
    }
    return r;
  }

  static long long stalled_for_ms(const connection_node& n) {
    const long long since = n.stalled_since_ms.load(std::memory_order_relaxed);
    return since == 0 ? 0 : steady_ms(clock::now()) - since;
  }

  // SEND_TIMEOUT: whether `n`'s unsent output has not moved for `limit_ms`.
  // Progress is a change of the send queue (it shrinks as the peer takes
  // data, and changes as the server writes more): a client that reads,
  // however slowly, moves it; one that never reads leaves it full.
  static bool send_stalled(connection_node& n, long long now_ms, long long limit_ms) {
    const int queued = unsent_bytes(n.fd);
    const long long since = n.stalled_since_ms.load(std::memory_order_relaxed);
    if (queued <= 0 || queued != n.send_queue || since == 0) {
      n.send_queue = queued;
      n.stalled_since_ms.store(queued > 0 ? now_ms : 0, std::memory_order_relaxed);
      return false;
    }
    return now_ms - since >= limit_ms;
  }

  activation_config config_;
  std::vector<server_socket> sockets_;
  lifecycle lifecycle_;
  bool activated_ = false;
  bool new_closed_ = false;  // the grace period for silent connections is over
  bool drain_logged_ = false;
  bool cut_ = false;             // a second signal: close at once, no linger
  bool idle_listening_ = false;  // under mutex_: an idle drain that a new connection ends
  bool resume_pending_ = false;  // under mutex_: add() saw one; take_resume() applies it
  std::atomic<bool> draining_{false};
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<connection_node>> nodes_;
  struct lingerer {
    int fd;  // our duplicate of a connection after its FIN
    clock::time_point until;
  };
  mutable std::mutex linger_mutex_;
  std::vector<lingerer> lingering_;
};

SOCKACT_DECL bool connection_closer::interrupt() {
  return false;
}

SOCKACT_DECL connection_closer* closer_of(connection_node& node) noexcept {
  return node.closer.get();
}

SOCKACT_DECL bool close_prepare(connection_node& node, close_reason why) {
  return node.owner->close_prepare(node, why);
}

}  // namespace detail

// Out of line, where detail::activation_state is complete.
SOCKACT_DECL activation::activation() noexcept = default;
SOCKACT_DECL activation::activation(activation&&) noexcept = default;
SOCKACT_DECL activation& activation::operator=(activation&&) noexcept = default;
SOCKACT_DECL activation::~activation() = default;

SOCKACT_DECL std::vector<server_socket>& activation::sockets() noexcept {
  return state_->sockets();
}
SOCKACT_DECL bool activation::activated() const noexcept {
  return state_->activated();
}
SOCKACT_DECL bool activation::draining() const noexcept {
  return state_ && state_->draining();
}
SOCKACT_DECL const activation_config& activation::config() const noexcept {
  return state_->config();
}
SOCKACT_DECL lifecycle& activation::state() noexcept {
  return state_->state();
}

SOCKACT_DECL connection activation::track_closer(int fd, std::unique_ptr<detail::connection_closer> closer) {
  return connection(state_->add(fd, std::move(closer)));
}

SOCKACT_DECL std::size_t activation::connections() const {
  return state_->open();
}

SOCKACT_DECL void activation::ready() {
  state_->ready();
}
SOCKACT_DECL void activation::close_listeners() noexcept {
  state_->close_listeners();
}
SOCKACT_DECL void activation::log(const std::string& line) const {
  state_->log(line);
}

SOCKACT_DECL activation::clock::time_point activation::next_deadline(clock::time_point now) const {
  return state_->next_deadline(now);
}
SOCKACT_DECL activation::step_result activation::on_timer(clock::time_point now) {
  return state_->on_timer(now);
}
SOCKACT_DECL activation::step_result activation::on_signal(int signo, clock::time_point now) {
  return state_->on_signal(signo, now);
}
SOCKACT_DECL void activation::finish() {
  state_->finish();
}

SOCKACT_DECL connection& connection::operator=(connection&& o) noexcept {
  if (this != &o) {
    reset();
    node_ = std::move(o.node_);
  }
  return *this;
}

SOCKACT_DECL connection::~connection() {
  reset();
}

SOCKACT_DECL int connection::fd() const noexcept {
  return node_ ? node_->fd : -1;
}

SOCKACT_DECL void connection::reset() noexcept {
  if (node_) {
    node_->owner->remove(*node_);
    node_.reset();
  }
}

SOCKACT_DECL void connection::received(std::size_t n) noexcept {
  if (!node_ || n == 0) return;
  detail::connection_node& c = *node_;
  const unsigned f = c.flags.load(std::memory_order_relaxed);
  if ((f & detail::connection_node::in_request) != 0) return;
  c.request_began_ms.store(detail::steady_ms(std::chrono::steady_clock::now()), std::memory_order_relaxed);
  if (!c.busy) c.busy = c.owner->state().tracker().begin();
  c.flags.fetch_or(detail::connection_node::sent | detail::connection_node::in_request,
                   std::memory_order_acq_rel);
}

SOCKACT_DECL void connection::headers_received() noexcept {
  if (!node_) return;
  received();
  node_->flags.fetch_or(detail::connection_node::head_done, std::memory_order_acq_rel);
}

SOCKACT_DECL void connection::request_received() noexcept {
  if (!node_) return;
  received();
  node_->flags.fetch_or(detail::connection_node::head_done | detail::connection_node::request_done,
                        std::memory_order_acq_rel);
}

SOCKACT_DECL void connection::response_sent(std::size_t buffered) noexcept {
  if (!node_) return;
  node_->flags.fetch_and(~unsigned{detail::connection_node::in_request | detail::connection_node::head_done |
                                   detail::connection_node::request_done},
                         std::memory_order_acq_rel);
  if (buffered > 0)
    received(buffered);  // the next request's clock starts now, and the server stays busy
  else
    node_->busy.end();
}

SOCKACT_DECL void connection::parsed(std::size_t buffered, bool complete, bool head_complete) noexcept {
  if (complete)
    request_received();
  else if (head_complete)
    headers_received();
  else
    received(buffered);
}

SOCKACT_DECL bool connection::keep_alive(std::size_t buffered) const noexcept {
  if (!node_ || !node_->owner->draining()) return true;
  return buffered > 0 || detail::unread_bytes(node_->fd) > 0;
}

SOCKACT_DECL bool connection::draining() const noexcept {
  return node_ && node_->owner->draining();
}

SOCKACT_DECL void connection::read_started() noexcept {
  if (node_) node_->flags.fetch_or(detail::connection_node::reading, std::memory_order_acq_rel);
}

SOCKACT_DECL connection::read_outcome connection::read_finished(std::size_t n, bool aborted) {
  if (!node_) return read_outcome::complete;
  detail::connection_node& c = *node_;
  const unsigned f =
      c.flags.fetch_and(~unsigned{detail::connection_node::reading}, std::memory_order_acq_rel);
  if (n > 0) received(n);
  if ((f & detail::connection_node::close_deferred) == 0) return read_outcome::complete;
  c.flags.fetch_and(
      ~unsigned{detail::connection_node::close_deferred | detail::connection_node::close_pending},
      std::memory_order_acq_rel);
  // It took bytes (they are served), or ended on its own (EOF, an error).
  if (n > 0 || !aborted) return read_outcome::complete;
  if (!c.alive.load(std::memory_order_acquire)) return read_outcome::complete;  // closed meanwhile
  const std::shared_ptr<detail::connection_node> keep = node_;  // the close may reset the handle
  if (c.owner->close_prepare(c, c.deferred_why)) {
    c.closer->close_now();
    return read_outcome::closed;
  }
  return read_outcome::read_again;  // bytes came meanwhile, or it is busy again
}

SOCKACT_DECL void connection::close() {
  if (!node_) return;
  const std::shared_ptr<detail::connection_node> n = node_;
  n->closer->dispatch(n, close_reason::app);
}

SOCKACT_DECL bool activate(activation& out, const activation_config& config, std::error_code& ec,
                           std::string* why) {
  ec.clear();
  activation_config cfg = config;
  if (cfg.read_environment && (!lifecycle_from_environment(cfg.lifecycle, ec, why) ||
                               !detail::pid_check_from_environment(cfg.listen.activation.pid_check, ec, why)))
    return false;
  std::vector<server_socket> sockets = listen_or_bind(cfg.listen, ec, why);
  if (ec) return false;
  static constexpr detail::wanted_kind listening_only{"a listening stream or seqpacket socket",
                                                      detail::wanted_family::any, SOCK_STREAM, SOCK_SEQPACKET,
                                                      detail::wanted_state::listening};
  static constexpr detail::wanted_kind or_connection{
      "a listening stream or seqpacket socket, or an Accept=yes connection", detail::wanted_family::any,
      SOCK_STREAM, SOCK_SEQPACKET, detail::wanted_state::listening_or_connected};
  for (const server_socket& l : sockets) {
    if (detail::check_kind(l.info, cfg.accept_connections ? or_connection : listening_only,
                           detail::fd_label(l.fd.get(), l.name), ec, why))
      continue;
    if (l.activated)
      for (server_socket& s : sockets) s.fd.release();  // not ours to close: leave every passed fd as it was
    return false;
  }
  bool activated = false;
  std::vector<int> listening;
  for (const server_socket& l : sockets) {
    activated = activated || l.activated;
    if (l.info.listening) listening.push_back(l.fd.get());
  }
  out.state_ =
      std::make_unique<detail::activation_state>(std::move(sockets), cfg, activated, std::move(listening));
  for (const server_socket& l : out.sockets())
    out.log(std::string(l.activated ? "serving activated " : "serving bound ") + l.name + " on " +
            (l.info.local_address.empty() ? "(unnamed)" : l.info.local_address) +
            (l.info.connected ? " (one connection)" : ""));
  std::string warning;
  if (!notify_socket_usable(&warning)) out.log("warning: " + warning);
  return true;
}

SOCKACT_DECL activation activate_or_exit(const activation_config& config) {
  activation a;
  std::error_code ec;
  std::string why;
  if (!activate(a, config, ec, &why)) {
    if (config.log != nullptr)
      config.log(why);
    else
      detail::default_log(config.program.empty() ? detail::short_program_name() : config.program, why);
    std::exit(1);
  }
  return a;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL activation activate(const activation_config& config) {
  activation a;
  std::error_code ec;
  std::string why;
  if (!activate(a, config, ec, &why)) detail::throw_error(ec, "sockact::activate: " + why);
  return a;
}
#endif

}  // namespace sockact

#endif  // SOCKACT_IMPL_ACTIVATION_IPP
