// SPDX-License-Identifier: MIT
// The definitions of <sockact/activation.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_ACTIVATION_IPP
#define SOCKACT_IMPL_ACTIVATION_IPP

#include <sockact/activation.hpp>
#include <sockact/detail/config.hpp>
#include <sockact/detail/lingerer.hpp>
#include <sockact/detail/registry.hpp>
#include <sockact/error.hpp>
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/listen.hpp>
#include <sockact/notify.hpp>
#include <sockact/socket_info.hpp>

#include <errno.h>
#include <signal.h>
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

// What an activation owns: the sockets, the log, the lifecycle (whose phase
// says whether the server drains), the lingering closes and the connections.
// The drain policy that ties them together is activation's own code.
struct activation_state {
  activation_state(std::vector<server_socket> s, const activation_config& c, bool act,
                   std::vector<int> listening)
      : config(c),
        sockets(std::move(s)),
        lifecycle(c.lifecycle, act, std::move(listening)),
        lingering(c.lifecycle.linger),
        registry(config, lifecycle, lingering),
        activated(act) {}

  activation_config config;
  std::vector<server_socket> sockets;
  sockact::lifecycle lifecycle;
  detail::lingerer lingering;
  connection_registry registry;
  bool activated = false;
  bool new_closed = false;  // the grace period for silent connections is over
  bool drain_logged = false;
  bool cut = false;  // a second signal: close at once, no linger
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

SOCKACT_DECL void end_lingering(activation& act) {
  act.state_->lingering.service(lingerer::clock::now(), true);
}

}  // namespace detail

// Out of line, where detail::activation_state is complete.
SOCKACT_DECL activation::activation() noexcept = default;
SOCKACT_DECL activation::activation(activation&&) noexcept = default;
SOCKACT_DECL activation& activation::operator=(activation&&) noexcept = default;
SOCKACT_DECL activation::~activation() = default;

SOCKACT_DECL std::vector<server_socket>& activation::sockets() noexcept {
  return state_->sockets;
}
SOCKACT_DECL bool activation::activated() const noexcept {
  return state_->activated;
}
SOCKACT_DECL bool activation::draining() const noexcept {
  return state_ && state_->registry.draining();
}
SOCKACT_DECL const activation_config& activation::config() const noexcept {
  return state_->config;
}
SOCKACT_DECL lifecycle& activation::state() noexcept {
  return state_->lifecycle;
}

SOCKACT_DECL connection activation::track_closer(int fd, std::unique_ptr<detail::connection_closer> closer) {
  return connection(state_->registry.add(fd, std::move(closer)));
}

SOCKACT_DECL std::size_t activation::connections() const {
  return state_->registry.size();
}

SOCKACT_DECL void activation::ready() {
  std::string status = "serving";
  for (const server_socket& l : state_->sockets) status += " " + l.name;
  state_->lifecycle.ready(status);
}

// Closes the listening sockets still held here; never shutdown(2): the
// manager keeps its copies and starts the service again on the next client.
SOCKACT_DECL void activation::close_listeners() noexcept {
  for (server_socket& l : state_->sockets)
    if (l.info.listening) l.fd.reset();
}

SOCKACT_DECL void activation::log(const std::string& line) const {
  const activation_config& c = state_->config;
  if (c.log != nullptr)
    c.log(line);
  else
    detail::default_log(c.program.empty() ? detail::short_program_name() : c.program, line);
}

SOCKACT_DECL activation::clock::time_point activation::next_deadline(clock::time_point now) const {
  const detail::activation_state& s = *state_;
  clock::time_point t = s.lifecycle.next_deadline(now);
  const bool busy_closing = s.registry.draining() || s.lingering.count() > 0;
  const bool connections = s.registry.size() > 0;
  const lifecycle_config& c = s.config.lifecycle;
  const bool watch_requests =
      c.headers_timeout.count() > 0 || c.request_timeout.count() > 0 || c.send_timeout.count() > 0;
  // While draining or lingering, look again soon: connections close on other
  // threads and clients send their FIN. While request deadlines run, often
  // enough that they pass on time.
  if (busy_closing)
    t = std::min(t, now + std::chrono::milliseconds(20));
  else if (watch_requests && connections)
    t = std::min(t, now + std::chrono::milliseconds(250));
  // Requests begin and end between two timer events, where a driver does not
  // look: while connections are open, look every check_interval(), so that
  // the exit comes at most that late after the last request, as promised.
  const idle_tracker& tracker = s.lifecycle.tracker();
  if (tracker.enabled() && s.lifecycle.current() == lifecycle::phase::serving && connections)
    t = std::min(t, now + tracker.check_interval());
  return t;
}

SOCKACT_DECL activation::step_result activation::on_timer(clock::time_point now) {
  take_resume(now);
  return apply(state_->lifecycle.on_timer(now), now);
}

SOCKACT_DECL activation::step_result activation::on_signal(int signo, clock::time_point now) {
  take_resume(now);
  const bool draining_before = state_->lifecycle.draining();
  lifecycle_actions a = state_->lifecycle.on_signal(signo, now);
  if (draining_before && a.close_all)
    state_->cut = true;  // a second signal: no lingering either
  else if (draining_before && a.stop_accepting)
    log(std::string(to_string(signo == SIGINT ? stop_reason::sigint : stop_reason::sigterm)) +
        " during the idle drain: answering what was received, then exiting");
  return apply(a, now);
}

// After the loop: the connections closed by the library linger (bounded),
// unless a second signal asked to stop at once.
SOCKACT_DECL void activation::finish() {
  const clock::time_point now = clock::now();
  state_->lingering.finish(state_->cut ? now : now + state_->config.lifecycle.linger);
}

SOCKACT_DECL void activation::take_resume(clock::time_point now) {
  if (!state_->registry.take_resume(now)) return;
  state_->new_closed = false;
  log("a new connection during the idle drain: serving again");  // the application's: outside the lock
}

SOCKACT_DECL activation::step_result activation::apply(lifecycle_actions a, clock::time_point now) {
  detail::activation_state& s = *state_;
  step_result r;
  s.registry.publish();
  if (s.lifecycle.current() == lifecycle::phase::serving) s.drain_logged = false;
  if (a.stop_accepting) r.stop_accepting = true;
  if (s.lifecycle.current() != lifecycle::phase::serving && !s.drain_logged) {
    s.drain_logged = true;
    if (const auto why = s.lifecycle.reason())
      log(std::string("stopping (") + to_string(*why) + "), " + std::to_string(s.registry.size()) +
          " connection(s) open" +
          (s.lifecycle.listening() ? "; still accepting: a new connection resumes serving" : ""));
  }
  // Closes dispatched outside the registry's lock (an inline close destroys
  // the connection, which takes it).
  const auto closes =
      s.registry.due(a, a.close_idle || s.lifecycle.draining(), a.close_new || s.new_closed, now);
  if (a.close_new) s.new_closed = true;
  for (const auto& [n, why] : closes) {
    n->flags.fetch_or(detail::connection_node::close_pending, std::memory_order_acq_rel);
    n->closer->dispatch(n, why);
  }
  s.lingering.service(now);
  if (s.lifecycle.draining()) {
    // Done when nothing is open and nothing lingers: the listeners of an
    // idle drain stay open until then, so a client arriving meanwhile is
    // served at once instead of waiting for the linger and a cold start.
    // The lifecycle runs the stop hook and the log function, which are the
    // application's: outside the lock. A connection that add() registers
    // meanwhile was accepted before the listeners close: the drain serves it.
    const std::size_t open_now = s.registry.size();
    if (!s.registry.resume_pending()) {
      const lifecycle_actions more = s.lifecycle.on_connections(open_now + s.lingering.count());
      if (more.stop_accepting) {
        r.stop_accepting = true;
        log("idle: nothing open and no one waiting; exiting");
      }
      a |= more;
    }
    s.registry.publish();
  }
  if (a.finished || s.lifecycle.current() == lifecycle::phase::done) {
    r.finished = true;
    r.stop_accepting = true;
  }
  return r;
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
  if (!c.busy) c.busy = c.owner->tracker().begin();
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
  node_->flags.fetch_or(detail::connection_node::output, std::memory_order_acq_rel);  // SEND_TIMEOUT looks
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
