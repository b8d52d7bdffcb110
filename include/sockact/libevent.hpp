// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LIBEVENT_HPP
#define SOCKACT_LIBEVENT_HPP

// The lifecycle on a libevent 2.1 event_base, for evhttp servers and for
// servers of their own on evconnlistener. The driver owns a timer event (the
// activation's deadlines), signal events for SIGTERM and SIGINT, and an
// evconnlistener on each listening socket; it closes them when the drain
// begins (close, never shutdown(2)), and when the drain is over it lingers on
// the connections it closed and ends the loop (event_base_loopexit).
//
//   sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http());
//   event_base* base = event_base_new();
//   evhttp* http = evhttp_new(base);               // routes as usual (evhttp_set_gencb ...)
//   {
//     sockact::libevent_driver driver(base, act);
//     driver.serve(http);                          // every listening socket, on this evhttp
//     event_base_dispatch(base);                   // returns when the drain is over
//   }                                              // before evhttp_free() and event_base_free()
//   // in a handler, before evhttp_send_reply(), with `headers` its output headers:
//   if (!driver.keep_alive(req)) evhttp_add_header(headers, "Connection", "close");
//
// evhttp. evhttp accepts for itself, and libevent 2.1 has no call that hands
// it a connection, nor one that reports a new connection or request. So the
// driver accepts through an evconnlistener it owns, bound to the evhttp
// (evhttp_bind_listener), and makes each connection's bufferevent itself
// (evhttp_set_bevcb): every connection is registered with the activation
// before anything else can happen on the loop, in particular before any of
// the driver's decisions, so a connection accepted at the idle deadline is
// never lost. What evhttp does with a connection is read from its bufferevent
// (public calls only): the bytes that reach its input buffer (a request has
// begun; its head is whole at its empty line), its output buffer (a response
// is being written), and its callbacks and enabled events, which evhttp sets
// in a fixed pattern in each phase (reading a request; handed to the
// application, which may hold it; writing the response). evhttp's own closes
// (after `Connection: close`, on EOF, on errors) come through
// evhttp_connection_set_closecb(): the driver then sends FIN and lingers on a
// duplicate, so that the client reads the whole last response. The closes the
// library decides (idle at the drain, HEADERS_TIMEOUT, REQUEST_TIMEOUT) free
// a connection that is reading a request (evhttp_connection_free()); one whose
// request the application holds is shut down instead, and evhttp frees it when
// the reply fails, so the application never replies on a freed request.
// Tested with libevent 2.1.12 (the phases are evhttp's behaviour, not its
// documented API): another version must be tested again.
//
// evconnlistener servers (a protocol of one's own on bufferevents): listen()
// accepts on every listening socket, and Accept=yes connections too, and
// hands each fd to on_connection(unique_fd, const server_socket&), which
// registers it (act.track(fd, close)) and reports its requests, as with
// <sockact/poll_driver.hpp>.
//
// One event_base per process may catch signals with libevent; the driver's
// SIGTERM and SIGINT events are that. Ignore SIGPIPE (libevent writes with
// writev(2)). Single-threaded: every call on the loop's thread.

#include <sockact/activation.hpp>
#include <sockact/detail/accept_core.hpp>
#include <sockact/error.hpp>
#include <sockact/posix.hpp>
#include <sockact/unique_fd.hpp>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#if !defined(LIBEVENT_VERSION_NUMBER) || LIBEVENT_VERSION_NUMBER < 0x02010000
#error "sockact/libevent.hpp needs libevent 2.1 or later"
#endif
#if LIBEVENT_VERSION_NUMBER >= 0x02020000 && !defined(SOCKACT_LIBEVENT_UNTESTED_VERSION)
// The evhttp phases (see the top) were read from 2.1's http.c. Define
// SOCKACT_LIBEVENT_UNTESTED_VERSION to build anyway, and test the drain.
#error \
    "sockact/libevent.hpp is tested with libevent 2.1; define SOCKACT_LIBEVENT_UNTESTED_VERSION to try this one"
#endif

/// The most a connection's evhttp input buffer holds (bytes read ahead of
/// evhttp's parser). evhttp reads on while it writes a response, so a client
/// that pipelines and never reads would grow it without end; at the limit the
/// driver's bufferevent stops reading (a read watermark). A request head line
/// must fit in it (a longer one waits for HEADERS_TIMEOUT).
#ifndef SOCKACT_LIBEVENT_INPUT_LIMIT
#define SOCKACT_LIBEVENT_INPUT_LIMIT (1024 * 1024)
#endif

namespace sockact {

namespace detail {
class libevent_core;
}

/// Runs an activation on a libevent event_base; see the top of this file.
/// Movable; destroy it before evhttp_free() and event_base_free().
class libevent_driver {
 public:
  /// Adds the driver's timer and signal events to `base`. READY=1 goes out
  /// when the loop runs. Then call serve() or listen().
  /// @param ec set when an event cannot be made or added.
  libevent_driver(event_base* base, activation& act, std::error_code& ec);
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload.
  libevent_driver(event_base* base, activation& act);
#endif
  libevent_driver(libevent_driver&&) noexcept = default;
  libevent_driver& operator=(libevent_driver&&) noexcept = default;
  libevent_driver(const libevent_driver&) = delete;
  libevent_driver& operator=(const libevent_driver&) = delete;
  /// Removes the driver's events and listeners; the connections still open
  /// stay with evhttp (or the server), unregistered.
  ~libevent_driver();

  /// Serves every listening socket of the activation on `http`, each through
  /// an evconnlistener the driver owns, and tracks each connection from its
  /// accept. Takes `http`'s evhttp_set_bevcb(). Once per driver.
  /// @param ec ENOTSUP for an Accept=yes connection (evhttp in libevent 2.1
  ///        cannot be given a connected socket), EALREADY when already
  ///        serving, or why an evconnlistener could not be made; then
  ///        nothing is bound.
  /// @param why receives a message naming the socket.
  /// @code
  ///   if (!driver.serve(http, ec, &why)) return fail(why);
  /// @endcode
  bool serve(evhttp* http, std::error_code& ec, std::string* why = nullptr);
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload, with the message.
  void serve(evhttp* http);
#endif

  /// For servers of their own on evconnlistener: accepts on every listening
  /// socket (pausing 100 ms when out of fds) and hands each connection, and
  /// each Accept=yes connection, to `on_connection(unique_fd, const
  /// server_socket&)` (non-blocking, close-on-exec), which registers it with
  /// act.track(fd, close) at once. Once per driver.
  /// @param ec EALREADY when already serving, or why an evconnlistener could
  ///        not be made; then nothing listens.
  template <class OnConnection>
  bool listen(OnConnection on_connection, std::error_code& ec, std::string* why = nullptr) {
    return listen_erased(std::function<void(unique_fd, const server_socket&)>(std::move(on_connection)), ec,
                         why);
  }
#if SOCKACT_HAS_EXCEPTIONS
  /// @throws std::system_error as the ec overload, with the message.
  template <class OnConnection>
  void listen(OnConnection on_connection) {
    or_throw(
        [&](std::error_code& ec, std::string* why) { return listen(std::move(on_connection), ec, why); });
  }
#endif

  /// For the response to `req` (an evhttp request on a served connection):
  /// whether it may keep the connection open. False while the server drains,
  /// unless the next request is already here (in evhttp's buffer or in the
  /// socket): then send `Connection: close`, and evhttp closes after it.
  bool keep_alive(evhttp_request* req) const;
  /// The socket `req`'s connection came in on (its name: from(req)->name);
  /// nullptr for a request the driver does not know.
  const server_socket* from(evhttp_request* req) const;
  /// The drain is over; the loop was told to exit.
  bool finished() const noexcept;

 private:
  bool listen_erased(std::function<void(unique_fd, const server_socket&)> on_connection, std::error_code& ec,
                     std::string* why);
  // The core, or nullptr with EINVAL when the driver did not start.
  detail::libevent_core* core(std::error_code& ec, std::string* why) const;
#if SOCKACT_HAS_EXCEPTIONS
  template <class Call>
  static void or_throw(Call&& call) {
    std::error_code ec;
    std::string why;
    if (!call(ec, &why)) detail::throw_error(ec, "sockact::libevent_driver: " + why);
  }
#endif
  std::unique_ptr<detail::libevent_core> core_;
};

namespace detail {

// Sets ec and *why; false, for `return fail(...)`.
inline bool libevent_fail(std::error_code& ec, std::string* why, int err, std::string message) {
  ec.assign(err, std::generic_category());
  if (why != nullptr) *why = std::move(message);
  return false;
}

// The accept error callback of an evconnlistener gets the listener and the
// user data evhttp_bind_listener() set (the evhttp), not ours: the driver
// finds itself from the listener here.
inline std::mutex& libevent_registry_mutex() {
  static std::mutex m;
  return m;
}
inline std::vector<std::pair<evconnlistener*, libevent_core*>>& libevent_registry() {
  static std::vector<std::pair<evconnlistener*, libevent_core*>> r;
  return r;
}

// What evhttp is doing with a connection, read from its bufferevent.
enum class evhttp_phase {
  reading,    // reading a request (or waiting for one): evhttp_read_cb set, EV_READ on
  delivered,  // the request is with the application: EV_READ and EV_WRITE off
  replying,   // a response is being written: no read callback (evhttp_write_buffer())
  freed       // evhttp_connection_free() ran: no callbacks at all
};

inline evhttp_phase phase_of(bufferevent* bev) noexcept {
  bufferevent_data_cb read_cb = nullptr, write_cb = nullptr;
  bufferevent_event_cb event_cb = nullptr;
  void* arg = nullptr;
  bufferevent_getcb(bev, &read_cb, &write_cb, &event_cb, &arg);
  if (arg == nullptr) return evhttp_phase::freed;
  if (read_cb == nullptr) return evhttp_phase::replying;
  if ((bufferevent_get_enabled(bev) & EV_READ) == 0) return evhttp_phase::delivered;
  return evhttp_phase::reading;
}

// The local address of a socket, for telling which listener accepted it.
struct bound_address {
  sockaddr_storage addr{};
  socklen_t len = 0;

  static bound_address of(int fd) noexcept {
    bound_address a;
    a.len = sizeof a.addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.addr), &a.len) != 0) a.len = 0;
    return a;
  }
  // Whether a connection with local address `c` came through this listener:
  // the same address, or the same port on a wildcard listener.
  bool accepts(const bound_address& c, bool exact) const noexcept {
    if (len == 0 || c.len == 0 || addr.ss_family != c.addr.ss_family) return false;
    if (addr.ss_family == AF_INET) {
      const auto& l = reinterpret_cast<const sockaddr_in&>(addr);
      const auto& r = reinterpret_cast<const sockaddr_in&>(c.addr);
      return l.sin_port == r.sin_port &&
             (l.sin_addr.s_addr == r.sin_addr.s_addr || (!exact && l.sin_addr.s_addr == htonl(INADDR_ANY)));
    }
    if (addr.ss_family == AF_INET6) {
      const auto& l = reinterpret_cast<const sockaddr_in6&>(addr);
      const auto& r = reinterpret_cast<const sockaddr_in6&>(c.addr);
      const bool same = std::memcmp(&l.sin6_addr, &r.sin6_addr, sizeof l.sin6_addr) == 0;
      const bool any = std::memcmp(&l.sin6_addr, &in6addr_any, sizeof l.sin6_addr) == 0;
      return l.sin6_port == r.sin6_port && (same || (!exact && any));
    }
    return len == c.len && std::memcmp(&addr, &c.addr, len) == 0;  // unix: the path or abstract name
  }
};

// One evhttp connection, from its accept (the bufferevent the driver made for
// it) to evhttp's close callback.
struct evhttp_conn {
  libevent_core* core = nullptr;
  bufferevent* bev = nullptr;
  evhttp_connection* evcon = nullptr;  // once registered
  const server_socket* from = nullptr;
  connection conn;
  evbuffer_cb_entry* in_cb = nullptr;
  evbuffer_cb_entry* out_cb = nullptr;
  evhttp_phase seen = evhttp_phase::reading;  // as last observed
  bool registered = false;                    // tracked by the activation, close callback set
  bool in_request = false;                    // received() reported, response_sent() not yet
  bool delivered = false;                     // request_received() reported
  bool replied = false;                       // a response was seen being written
  bool closing = false;                       // evhttp is freeing it (its close callback ran)
  bool dirty = false;                         // queued for a look after evhttp's callbacks
  // The request head's end: the first empty line after a non-empty one.
  struct {
    bool done = false, line_empty = true, seen_line = false;
    std::size_t scanned = 0;  // bytes at the front of the input buffer already looked at
  } head;
};

class libevent_core {
 public:
  using clock = activation::clock;
  using on_connection_fn = std::function<void(unique_fd, const server_socket&)>;

  libevent_core(event_base* base, activation& act) : base_(base), act_(&act) {}
  libevent_core(const libevent_core&) = delete;
  libevent_core& operator=(const libevent_core&) = delete;

  ~libevent_core() {
    if (http_ != nullptr && serving_) evhttp_set_bevcb(http_, nullptr, nullptr);
    close_listeners(false);
    for (auto& [bev, c] : conns_) detach(*c);
    for (auto& c : pending_) detach(*c);
    for (event* e : {timer_, sigterm_, sigint_, sweep_})
      if (e != nullptr) event_free(e);
  }

  std::error_code start() {
    timer_ = event_new(base_, -1, 0, &libevent_core::on_timer_event, this);
    sigterm_ = event_new(base_, SIGTERM, EV_SIGNAL | EV_PERSIST, &libevent_core::on_signal_event, this);
    sigint_ = event_new(base_, SIGINT, EV_SIGNAL | EV_PERSIST, &libevent_core::on_signal_event, this);
    sweep_ = event_new(base_, -1, 0, &libevent_core::on_sweep_event, this);
    if (base_ == nullptr || timer_ == nullptr || sigterm_ == nullptr || sigint_ == nullptr ||
        sweep_ == nullptr)
      return std::error_code(base_ == nullptr ? EINVAL : ENOMEM, std::generic_category());
    event_priority_set(sweep_, 0);  // before anything the next poll reports
    if (event_add(sigterm_, nullptr) != 0 || event_add(sigint_, nullptr) != 0)
      return std::error_code(errno != 0 ? errno : EINVAL, std::generic_category());
    const timeval now{0, 0};  // the first tick sends READY=1 and hands over Accept=yes connections
    if (event_add(timer_, &now) != 0) return std::error_code(ENOMEM, std::generic_category());
    armed_ = clock::now();
    return {};
  }

  bool serve(evhttp* http, std::error_code& ec, std::string* why);
  bool listen(on_connection_fn f, std::error_code& ec, std::string* why);

  bool keep_alive(evhttp_request* req) {
    evhttp_conn* c = conn_of(req);
    if (c == nullptr) return !act_->draining();
    return c->conn.keep_alive(evbuffer_get_length(bufferevent_get_input(c->bev)));
  }
  const server_socket* from(evhttp_request* req) {
    const evhttp_conn* c = conn_of(req);
    return c == nullptr ? nullptr : c->from;
  }
  bool finished() const noexcept { return finished_; }

 private:
  struct listener {
    evconnlistener* lev = nullptr;
    evhttp_bound_socket* bound = nullptr;  // evhttp's; frees `lev` with it
    server_socket* from = nullptr;
    bound_address address;
    clock::time_point paused_until{};  // zero: not paused
  };

  evhttp_conn* conn_of(evhttp_request* req) {
    evhttp_connection* evcon = req == nullptr ? nullptr : evhttp_request_get_connection(req);
    if (evcon == nullptr) return nullptr;
    register_pending();
    const auto it = conns_.find(evhttp_connection_get_bufferevent(evcon));
    return it == conns_.end() ? nullptr : it->second.get();
  }

  // Listeners ---------------------------------------------------------------

  bool make_listeners(evhttp* http, std::error_code& ec, std::string* why) {
    for (server_socket& l : act_->sockets()) {
      if (!l.fd || !l.info.listening) continue;
      listener entry;
      entry.from = &l;
      entry.address = bound_address::of(l.fd.get());
      const unsigned flags =
          LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED;  // no CLOSE_ON_FREE: the activation owns the fd
      evconnlistener_cb cb = http != nullptr ? nullptr : &libevent_core::on_accepted;
      entry.lev = evconnlistener_new(base_, cb, this, flags, 0, l.fd.get());  // backlog 0: no listen(2) again
      if (entry.lev != nullptr && http != nullptr) {
        entry.bound = evhttp_bind_listener(http, entry.lev);
        if (entry.bound == nullptr) evconnlistener_free(entry.lev);
      }
      if (entry.lev == nullptr || (http != nullptr && entry.bound == nullptr)) {
        ec.assign(errno != 0 ? errno : ENOMEM, std::generic_category());
        if (why != nullptr) *why = "cannot make an evconnlistener for " + l.name + ": " + ec.message();
        http_ = http;
        close_listeners(false);
        return false;
      }
      evconnlistener_set_error_cb(entry.lev, &libevent_core::on_accept_error);
      listeners_.push_back(entry);
    }
    http_ = http;
    {
      const std::lock_guard<std::mutex> lock(libevent_registry_mutex());
      for (const listener& l : listeners_) libevent_registry().emplace_back(l.lev, this);
    }
    for (const listener& l : listeners_) evconnlistener_enable(l.lev);
    return true;
  }

  // Stops accepting for good: the listeners go, the fds stay with the
  // activation, which closes them (close_listeners()), never shutdown(2).
  void close_listeners(bool close_fds) {
    {
      const std::lock_guard<std::mutex> lock(libevent_registry_mutex());
      auto& r = libevent_registry();
      r.erase(std::remove_if(r.begin(), r.end(), [this](const auto& p) { return p.second == this; }),
              r.end());
    }
    for (listener& l : listeners_) {
      if (l.bound != nullptr)
        evhttp_del_accept_socket(http_, l.bound);  // frees the evconnlistener: event_del, no close
      else if (l.lev != nullptr)
        evconnlistener_free(l.lev);
    }
    listeners_.clear();
    if (close_fds) act_->close_listeners();
  }

  static void on_accept_error(evconnlistener* lev, void*) {
    const int err = EVUTIL_SOCKET_ERROR();
    libevent_core* self = nullptr;
    {
      const std::lock_guard<std::mutex> lock(libevent_registry_mutex());
      for (const auto& [l, core] : libevent_registry())
        if (l == lev) self = core;
    }
    if (self != nullptr) self->accept_failed(lev, err);
  }

  // Out of fds (or another accept error): stop watching that listener for a
  // while rather than spin; the clients wait in the kernel's queue.
  // libevent's listener retries EINTR, EAGAIN and ECONNABORTED itself and
  // reports the rest here; the shared accept path says what each means.
  void accept_failed(evconnlistener* lev, int err) {
    for (listener& l : listeners_) {
      if (l.lev != lev) continue;
      if (accept_.failed(err, l.from->name, [&](const std::string& line) { act_->log(line); }) !=
          accept_next::back_off)
        continue;  // that connection died in the queue: the listener stays enabled
      evconnlistener_disable(lev);
      l.paused_until = clock::now() + accept_back_off;
    }
    arm();
  }

  void resume_paused(clock::time_point now) {
    for (listener& l : listeners_)
      if (l.paused_until != clock::time_point() && l.paused_until <= now) {
        l.paused_until = clock::time_point();
        evconnlistener_enable(l.lev);
      }
  }

  // listen(): a connection accepted, or passed (Accept=yes).
  static void on_accepted(evconnlistener* lev, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    unique_fd c(fd);
    for (const listener& l : self->listeners_)
      if (l.lev == lev) {
        self->on_connection_(std::move(c), *l.from);
        break;
      }
    self->arm();  // with a connection open, the request deadlines are looked at
  }

  void hand_over_passed() {
    for (server_socket& l : act_->sockets()) {
      if (!l.info.connected || !l.fd) continue;
      std::error_code ignored;
      set_nonblocking(l.fd.get(), true, ignored);
      single_ = true;
      on_connection_(unique_fd(l.fd.release()), l);
    }
  }

  // evhttp connections -----------------------------------------------------

  // evhttp_set_bevcb(): called by evhttp for each connection it accepts,
  // before it has the fd or the connection object.
  static bufferevent* make_bufferevent(event_base* base, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    bufferevent* bev = bufferevent_socket_new(base, -1, 0);  // evhttp's own options: it closes the fd
    if (bev == nullptr) return nullptr;
    bufferevent_setwatermark(bev, EV_READ, 0, SOCKACT_LIBEVENT_INPUT_LIMIT);
    auto c = std::make_unique<evhttp_conn>();
    c->core = self;
    c->bev = bev;
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), &libevent_core::on_input, c.get());
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), &libevent_core::on_output, c.get());
    self->pending_.push_back(std::move(c));
    // evhttp finishes setting the connection up before this callback returns
    // to the listener; the registration runs right after, ahead of anything
    // the next poll reports (this event has the highest priority), and every
    // decision of the driver registers what is pending first.
    event_active(self->sweep_, EV_TIMEOUT, 0);
    return bev;
  }

  // Registers the connections evhttp has set up since the last look.
  void register_pending() {
    if (pending_.empty()) return;
    std::vector<std::unique_ptr<evhttp_conn>> now;
    now.swap(pending_);
    for (auto& c : now) {
      if (phase_of(c->bev) == evhttp_phase::freed) {  // evhttp gave up on it while setting it up
        detach(*c);
        continue;
      }
      void* arg = nullptr;
      bufferevent_getcb(c->bev, nullptr, nullptr, nullptr, &arg);
      const int fd = bufferevent_getfd(c->bev);
      if (fd < 0) {
        detach(*c);
        continue;
      }
      c->evcon = static_cast<evhttp_connection*>(arg);  // evhttp's callbacks all take the connection
      c->from = listener_for(fd);
      evhttp_conn* raw = c.get();
      c->conn = act_->track(fd, [raw] { raw->core->library_close(*raw); });
      c->registered = true;
      evhttp_connection_set_closecb(c->evcon, &libevent_core::on_evhttp_close, raw);
      conns_.emplace(c->bev, std::move(c));
    }
    arm();  // with connections open, the request deadlines are looked at
  }

  const server_socket* listener_for(int fd) const noexcept {
    const bound_address a = bound_address::of(fd);
    for (const bool exact : {true, false})
      for (const listener& l : listeners_)
        if (l.address.accepts(a, exact)) return l.from;
    return listeners_.size() == 1 ? listeners_.front().from : nullptr;
  }

  // Bytes reached (or left) evhttp's input buffer of a connection.
  static void on_input(evbuffer* in, const evbuffer_cb_info* info, void* arg) {
    auto* c = static_cast<evhttp_conn*>(arg);
    libevent_core* self = c->core;
    if (!c->registered) {
      bufferevent* bev = c->bev;
      self->register_pending();  // `c` may be gone after this: find it again
      const auto it = self->conns_.find(bev);
      if (it == self->conns_.end()) return;
      c = it->second.get();
    }
    if (c->closing) return;
    self->look(*c);
    c->head.scanned -= std::min(c->head.scanned, info->n_deleted);
    if (info->n_added > 0 && c->seen == evhttp_phase::reading) {
      if (!c->in_request) {
        c->in_request = true;
        c->conn.received(info->n_added);  // a request begins: busy, and HEADERS_TIMEOUT runs
      }
      scan_head(*c, in);
    }
    c->head.scanned = evbuffer_get_length(in);
    self->mark(*c);  // after evhttp parsed: the request may be with the application
  }

  // evhttp wrote (or queued) response bytes.
  static void on_output(evbuffer*, const evbuffer_cb_info*, void* arg) {
    auto* c = static_cast<evhttp_conn*>(arg);
    if (c->registered && !c->closing) c->core->mark(*c);
  }

  void mark(evhttp_conn& c) {
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(c.bev);
    }
    event_active(sweep_, EV_TIMEOUT, 0);
  }

  // Reports what changed since the connection was last looked at.
  void look(evhttp_conn& c) {
    const evhttp_phase now = phase_of(c.bev);
    if (now == evhttp_phase::freed) return;
    if ((now == evhttp_phase::delivered || now == evhttp_phase::replying) && !c.delivered) {
      c.delivered = c.in_request = true;
      c.conn.request_received();  // with the application (or answered by evhttp): no request deadline
    }
    if (now == evhttp_phase::replying) c.replied = true;
    if (now == evhttp_phase::reading && c.replied) {
      // Its response is written and evhttp reads the next request; bytes
      // that came meanwhile already begin it.
      const std::size_t buffered = evbuffer_get_length(bufferevent_get_input(c.bev));
      c.replied = c.delivered = false;
      c.in_request = buffered > 0;
      c.head = {};
      c.conn.response_sent(buffered);
      scan_head(c, bufferevent_get_input(c.bev));
      c.head.scanned = buffered;
    }
    c.seen = now;
  }

  // Looks for the end of the request head in the bytes not looked at yet.
  static void scan_head(evhttp_conn& c, evbuffer* in) {
    auto& h = c.head;
    if (h.done || !c.in_request) return;
    const std::size_t length = evbuffer_get_length(in);
    if (h.scanned >= length) return;
    evbuffer_ptr at;
    if (evbuffer_ptr_set(in, &at, h.scanned, EVBUFFER_PTR_SET) != 0) return;
    evbuffer_iovec v[16];
    const int n = evbuffer_peek(in, static_cast<ev_ssize_t>(length - h.scanned), &at, v, 16);
    for (int i = 0; i < n && i < 16; ++i) {
      const char* p = static_cast<const char*>(v[i].iov_base);
      for (std::size_t k = 0; k < v[i].iov_len; ++k) {
        if (p[k] == '\n') {
          if (h.line_empty && h.seen_line) {
            h.done = true;
            c.conn.headers_received();  // HEADERS_TIMEOUT stops; the body may follow
            return;
          }
          h.seen_line = h.seen_line || !h.line_empty;
          h.line_empty = true;
        } else if (p[k] != '\r') {
          h.line_empty = false;
        }
      }
    }
  }

  // Registers what is pending and looks at the connections marked since the
  // last sweep, or at all of them (before a decision).
  void sweep(bool all) {
    register_pending();
    std::vector<bufferevent*> marked;
    marked.swap(dirty_);
    const auto visit = [this](evhttp_conn& c) {
      c.dirty = false;
      look(c);
    };
    if (all) {
      for (auto& [bev, c] : conns_) visit(*c);
      return;
    }
    for (bufferevent* bev : marked) {
      const auto it = conns_.find(bev);
      if (it != conns_.end()) visit(*it->second);  // else closed meanwhile
    }
  }

  // A close the library decided (idle at the drain, a request deadline,
  // SHUTDOWN_TIMEOUT), after its FIN: inline, on the loop.
  void library_close(evhttp_conn& c) {
    if (c.closing) return;  // evhttp is freeing it: its close callback called this
    look(c);
    if (c.seen == evhttp_phase::reading) {
      evhttp_connection_free(c.evcon);  // its close callback forgets `c`
      return;
    }
    // The application holds the request (or writes its response): freeing
    // the connection would free the request under it. Shut the socket; the
    // reply fails and evhttp frees the connection then.
    ::shutdown(bufferevent_getfd(c.bev), SHUT_RDWR);  // a connection, never a listener
  }

  // evhttp_connection_set_closecb(): evhttp frees the connection now.
  static void on_evhttp_close(evhttp_connection*, void* arg) {
    auto* c = static_cast<evhttp_conn*>(arg);
    libevent_core* self = c->core;
    c->closing = true;
    c->conn.close();  // FIN, then the library lingers on a duplicate (nothing if it closed it already)
    const auto it = self->conns_.find(c->bev);
    detach(*c);
    if (it != self->conns_.end()) self->conns_.erase(it);  // unregistered
  }

  // Lets go of a connection: no callback of the driver runs for it again.
  static void detach(evhttp_conn& c) noexcept {
    if (c.in_cb != nullptr) evbuffer_remove_cb_entry(bufferevent_get_input(c.bev), c.in_cb);
    if (c.out_cb != nullptr) evbuffer_remove_cb_entry(bufferevent_get_output(c.bev), c.out_cb);
    c.in_cb = c.out_cb = nullptr;
    if (c.registered && !c.closing && c.evcon != nullptr)
      evhttp_connection_set_closecb(c.evcon, nullptr, nullptr);
    c.conn = connection();
  }

  // The loop's events ---------------------------------------------------------

  static void on_timer_event(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    self->armed_ = clock::time_point::max();
    self->tick();
  }

  static void on_signal_event(evutil_socket_t signo, short, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    if (self->finished_) return;
    self->sweep(true);
    self->apply(self->act_->on_signal(signo));
    self->arm();
  }

  static void on_sweep_event(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<libevent_core*>(arg);
    if (self->finished_) return;
    self->sweep(false);
    self->arm();
  }

  void tick() {
    if (finished_) return;
    if (!ready_) {
      ready_ = true;
      act_->ready();
      if (on_connection_) hand_over_passed();
    }
    resume_paused(clock::now());
    sweep(true);
    apply(act_->on_timer());
    // Accept=yes only: the connection was served; nothing more to do.
    if (single_ && !finished_ && listeners_.empty() && act_->connections() == 0) finish();
    arm();
  }

  void apply(const activation::step_result& r) {
    if (r.stop_accepting && !listeners_.empty()) close_listeners(true);
    if (r.finished) finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    for (event* e : {timer_, sigterm_, sigint_, sweep_}) event_del(e);
    act_->finish();  // bounded: the connections closed by the library linger at most this long
    event_base_loopexit(base_, nullptr);
  }

  // Points the timer at the next deadline, if that is earlier than the one it
  // is set for. Never later: deadlines such as "look again in 250 ms" move
  // with every call, and must still come.
  void arm() {
    if (finished_) return;
    const clock::time_point now = clock::now();
    clock::time_point due = act_->next_deadline(now);
    for (const listener& l : listeners_)
      if (l.paused_until != clock::time_point()) due = std::min(due, l.paused_until);
    if (single_ && act_->connections() > 0) due = std::min(due, now + std::chrono::milliseconds(250));
    if (due == clock::time_point::max() || due >= armed_) return;
    long long us = std::chrono::duration_cast<std::chrono::microseconds>(due - now).count() + 1;
    if (us < 0) us = 0;
    const timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    if (event_add(timer_, &tv) == 0) armed_ = due;
  }

  event_base* base_;
  activation* act_;
  event* timer_ = nullptr;
  event* sigterm_ = nullptr;
  event* sigint_ = nullptr;
  event* sweep_ = nullptr;
  evhttp* http_ = nullptr;
  std::vector<listener> listeners_;
  on_connection_fn on_connection_;
  std::vector<std::unique_ptr<evhttp_conn>> pending_;  // made by evhttp's bevcb, not registered yet
  std::unordered_map<bufferevent*, std::unique_ptr<evhttp_conn>> conns_;
  std::vector<bufferevent*> dirty_;
  clock::time_point armed_ = clock::time_point::max();
  bool serving_ = false, ready_ = false, finished_ = false, single_ = false;
  accept_core accept_;
};

inline bool libevent_core::serve(evhttp* http, std::error_code& ec, std::string* why) {
  ec.clear();
  if (serving_) return libevent_fail(ec, why, EALREADY, "already serving");
  if (http == nullptr) return libevent_fail(ec, why, EINVAL, "no evhttp");
  for (const server_socket& l : act_->sockets())
    if (l.fd && l.info.connected)
      return libevent_fail(ec, why, ENOTSUP,
                           "fd " + std::to_string(l.fd.get()) + " (\"" + l.name +
                               "\") is an Accept=yes connection: evhttp (libevent 2.1) cannot be given a "
                               "connected socket; use listening sockets (Accept=no)");
  if (!make_listeners(http, ec, why)) return false;
  evhttp_set_bevcb(http, &libevent_core::make_bufferevent, this);
  serving_ = true;
  return true;
}

inline bool libevent_core::listen(on_connection_fn f, std::error_code& ec, std::string* why) {
  ec.clear();
  if (serving_) return libevent_fail(ec, why, EALREADY, "already serving");
  if (!make_listeners(nullptr, ec, why)) return false;
  on_connection_ = std::move(f);  // only now: a failed listen() hands nothing over
  serving_ = true;
  if (ready_) hand_over_passed();
  return true;
}

}  // namespace detail

inline libevent_driver::libevent_driver(event_base* base, activation& act, std::error_code& ec)
    : core_(std::make_unique<detail::libevent_core>(base, act)) {
  ec = core_->start();
  if (ec) core_.reset();
}

#if SOCKACT_HAS_EXCEPTIONS
inline libevent_driver::libevent_driver(event_base* base, activation& act) {
  std::error_code ec;
  *this = libevent_driver(base, act, ec);
  if (ec) detail::throw_error(ec, "sockact::libevent_driver");
}
#endif

inline libevent_driver::~libevent_driver() = default;

inline detail::libevent_core* libevent_driver::core(std::error_code& ec, std::string* why) const {
  if (!core_) detail::libevent_fail(ec, why, EINVAL, "the driver did not start");
  return core_.get();
}

inline bool libevent_driver::serve(evhttp* http, std::error_code& ec, std::string* why) {
  detail::libevent_core* c = core(ec, why);
  return c != nullptr && c->serve(http, ec, why);
}

#if SOCKACT_HAS_EXCEPTIONS
inline void libevent_driver::serve(evhttp* http) {
  or_throw([&](std::error_code& ec, std::string* why) { return serve(http, ec, why); });
}
#endif

inline bool libevent_driver::listen_erased(std::function<void(unique_fd, const server_socket&)> on_connection,
                                           std::error_code& ec, std::string* why) {
  detail::libevent_core* c = core(ec, why);
  return c != nullptr && c->listen(std::move(on_connection), ec, why);
}

inline bool libevent_driver::keep_alive(evhttp_request* req) const {
  return core_ ? core_->keep_alive(req) : true;
}

inline const server_socket* libevent_driver::from(evhttp_request* req) const {
  return core_ ? core_->from(req) : nullptr;
}

inline bool libevent_driver::finished() const noexcept {
  return !core_ || core_->finished();
}

}  // namespace sockact

#endif  // SOCKACT_LIBEVENT_HPP
