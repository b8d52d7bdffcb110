// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_LIBEVENT_LISTENERS_HPP
#define SOCKACT_DETAIL_LIBEVENT_LISTENERS_HPP

// The accept side of <sockact/libevent.hpp>: an evconnlistener on each
// listening socket of an activation (bound to an evhttp, or with a callback of
// the driver's), paused on accept errors by the shared accept path, closed
// for good when the drain begins; and which listener a connection came
// through.

#include <sockact/activation.hpp>
#include <sockact/detail/accept_core.hpp>

#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact::detail {

// Sets ec and *why; false, for `return libevent_fail(...)`.
inline bool libevent_fail(std::error_code& ec, std::string* why, int err, std::string message) {
  ec.assign(err, std::generic_category());
  if (why != nullptr) *why = std::move(message);
  return false;
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

class libevent_listeners;

// The accept error callback of an evconnlistener gets the listener and the
// user data evhttp_bind_listener() set (the evhttp), not ours: the listeners
// find themselves from the evconnlistener here.
inline std::mutex& libevent_registry_mutex() {
  static std::mutex m;
  return m;
}
inline std::vector<std::pair<evconnlistener*, libevent_listeners*>>& libevent_registry() {
  static std::vector<std::pair<evconnlistener*, libevent_listeners*>> r;
  return r;
}

// The evconnlisteners of one driver. Not movable: the registry and libevent
// point at it.
class libevent_listeners {
 public:
  using clock = activation::clock;

  // `on_pause` runs after a listener was paused (the driver's timer must
  // come at the end of the pause).
  libevent_listeners(event_base* base, activation& act, std::function<void()> on_pause)
      : base_(base), act_(&act), on_pause_(std::move(on_pause)) {}
  libevent_listeners(const libevent_listeners&) = delete;
  libevent_listeners& operator=(const libevent_listeners&) = delete;
  ~libevent_listeners() { close(); }

  // An evconnlistener on each listening socket, enabled: bound to `http`
  // (evhttp accepts), or, without one, calling `on_accepted(lev, fd, ..., arg)`.
  bool open(evhttp* http, evconnlistener_cb on_accepted, void* arg, std::error_code& ec, std::string* why) {
    http_ = http;
    for (server_socket& l : act_->sockets()) {
      if (!l.fd || !l.info.listening) continue;
      listener entry;
      entry.from = &l;
      entry.address = bound_address::of(l.fd.get());
      const unsigned flags =
          LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED;  // no CLOSE_ON_FREE: the activation owns the fd
      entry.lev = evconnlistener_new(base_, http != nullptr ? nullptr : on_accepted, arg, flags, 0,
                                     l.fd.get());  // backlog 0: no listen(2) again
      if (entry.lev != nullptr && http != nullptr) {
        entry.bound = evhttp_bind_listener(http, entry.lev);
        if (entry.bound == nullptr) evconnlistener_free(entry.lev);
      }
      if (entry.lev == nullptr || (http != nullptr && entry.bound == nullptr)) {
        const int err = errno != 0 ? errno : ENOMEM;
        close();
        return libevent_fail(
            ec, why, err,
            "cannot make an evconnlistener for " + l.name + ": " + std::generic_category().message(err));
      }
      evconnlistener_set_error_cb(entry.lev, &libevent_listeners::on_accept_error);
      listeners_.push_back(entry);
    }
    {
      const std::lock_guard<std::mutex> lock(libevent_registry_mutex());
      for (const listener& l : listeners_) libevent_registry().emplace_back(l.lev, this);
    }
    for (const listener& l : listeners_) evconnlistener_enable(l.lev);
    return true;
  }

  // Stops accepting for good: the evconnlisteners go (event_del, no close);
  // the fds stay with the activation, never shutdown(2).
  void close() noexcept {
    {
      const std::lock_guard<std::mutex> lock(libevent_registry_mutex());
      auto& r = libevent_registry();
      r.erase(std::remove_if(r.begin(), r.end(), [this](const auto& p) { return p.second == this; }),
              r.end());
    }
    for (listener& l : listeners_) {
      if (l.bound != nullptr)
        evhttp_del_accept_socket(http_, l.bound);  // frees the evconnlistener
      else if (l.lev != nullptr)
        evconnlistener_free(l.lev);
    }
    listeners_.clear();
  }

  bool accepting() const noexcept { return !listeners_.empty(); }

  // The socket an evconnlistener listens on.
  const server_socket* socket_of(const evconnlistener* lev) const noexcept {
    for (const listener& l : listeners_)
      if (l.lev == lev) return l.from;
    return nullptr;
  }

  // The socket a connection (its fd) was accepted on.
  const server_socket* socket_for(int fd) const noexcept {
    const bound_address a = bound_address::of(fd);
    for (const bool exact : {true, false})
      for (const listener& l : listeners_)
        if (l.address.accepts(a, exact)) return l.from;
    return listeners_.size() == 1 ? listeners_.front().from : nullptr;
  }

  // The end of the earliest pause; time_point::max() when none.
  clock::time_point next_resume() const noexcept {
    clock::time_point due = clock::time_point::max();
    for (const listener& l : listeners_)
      if (l.paused_until != clock::time_point()) due = std::min(due, l.paused_until);
    return due;
  }

  void resume(clock::time_point now) {
    for (listener& l : listeners_)
      if (l.paused_until != clock::time_point() && l.paused_until <= now) {
        l.paused_until = clock::time_point();
        evconnlistener_enable(l.lev);
      }
  }

 private:
  struct listener {
    evconnlistener* lev = nullptr;
    evhttp_bound_socket* bound = nullptr;  // evhttp's; frees `lev` with it
    server_socket* from = nullptr;
    bound_address address;
    clock::time_point paused_until{};  // zero: not paused
  };

  static void on_accept_error(evconnlistener* lev, void*) {
    const int err = EVUTIL_SOCKET_ERROR();
    libevent_listeners* self = nullptr;
    {
      const std::lock_guard<std::mutex> lock(libevent_registry_mutex());
      for (const auto& [l, owner] : libevent_registry())
        if (l == lev) self = owner;
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
    on_pause_();
  }

  event_base* base_;
  activation* act_;
  std::function<void()> on_pause_;
  evhttp* http_ = nullptr;
  std::vector<listener> listeners_;
  accept_core accept_;
};

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_LIBEVENT_LISTENERS_HPP
