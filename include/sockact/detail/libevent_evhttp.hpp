// SPDX-License-Identifier: MIT
#ifndef SOCKACT_DETAIL_LIBEVENT_EVHTTP_HPP
#define SOCKACT_DETAIL_LIBEVENT_EVHTTP_HPP

// The connections of an evhttp, for <sockact/libevent.hpp>: each registered
// with the activation as evhttp accepts it (the driver makes its bufferevent,
// evhttp_set_bevcb), its requests reported from what evhttp does with that
// bufferevent (the phases below), evhttp's closes followed, and the closes the
// library decides carried out without freeing a request under the
// application. The top of <sockact/libevent.hpp> tells why it is done so.

#include <sockact/activation.hpp>
#include <sockact/detail/libevent_listeners.hpp>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <sys/socket.h>
#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#if !defined(LIBEVENT_VERSION_NUMBER) || LIBEVENT_VERSION_NUMBER < 0x02010000
#error "sockact/libevent.hpp needs libevent 2.1 or later"
#endif
#if LIBEVENT_VERSION_NUMBER >= 0x02020000 && !defined(SOCKACT_LIBEVENT_UNTESTED_VERSION)
// The evhttp phases (below) were read from 2.1's http.c. Define
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

namespace sockact::detail {

class evhttp_connections;

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

// One evhttp connection, from its accept (the bufferevent the driver made for
// it) to evhttp's close callback.
struct evhttp_conn {
  evhttp_connections* owner = nullptr;
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

// The connections of one evhttp, from its accept to evhttp's close. Not
// movable: libevent's callbacks point at it.
class evhttp_connections {
 public:
  // `listeners` says which socket a connection came in on; `on_change` runs
  // when the connections' deadlines may have moved (the driver's timer).
  evhttp_connections(activation& act, const libevent_listeners& listeners, std::function<void()> on_change)
      : act_(&act), listeners_(&listeners), on_change_(std::move(on_change)) {}
  evhttp_connections(const evhttp_connections&) = delete;
  evhttp_connections& operator=(const evhttp_connections&) = delete;
  // The connections still open stay with evhttp, unregistered.
  ~evhttp_connections() {
    if (http_ != nullptr) evhttp_set_bevcb(http_, nullptr, nullptr);
    for (auto& [bev, c] : conns_) detach(*c);
    for (auto& c : pending_) detach(*c);
    if (sweep_ != nullptr) event_free(sweep_);
  }

  // Makes the event that registers and looks at connections after evhttp's
  // callbacks.
  std::error_code start(event_base* base) {
    sweep_ = event_new(base, -1, 0, &evhttp_connections::on_sweep_event, this);
    if (sweep_ == nullptr) return std::error_code(ENOMEM, std::generic_category());
    event_priority_set(sweep_, 0);  // before anything the next poll reports
    return {};
  }
  // Takes `http`'s evhttp_set_bevcb(): from now on each connection it accepts
  // is tracked.
  void attach(evhttp* http) {
    http_ = http;
    evhttp_set_bevcb(http, &evhttp_connections::make_bufferevent, this);
  }
  // The drain is over: nothing is registered or looked at any more.
  void stop() noexcept {
    stopped_ = true;
    if (sweep_ != nullptr) event_del(sweep_);
  }

  // Registers what is pending and looks at the connections marked since the
  // last sweep, or at all of them (before a decision of the driver).
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

  bool keep_alive(evhttp_request* req) {
    evhttp_conn* c = conn_of(req);
    if (c == nullptr) return !act_->draining();
    return c->conn.keep_alive(evbuffer_get_length(bufferevent_get_input(c->bev)));
  }
  const server_socket* from(evhttp_request* req) {
    const evhttp_conn* c = conn_of(req);
    return c == nullptr ? nullptr : c->from;
  }

 private:
  evhttp_conn* conn_of(evhttp_request* req) {
    evhttp_connection* evcon = req == nullptr ? nullptr : evhttp_request_get_connection(req);
    if (evcon == nullptr) return nullptr;
    register_pending();
    const auto it = conns_.find(evhttp_connection_get_bufferevent(evcon));
    return it == conns_.end() ? nullptr : it->second.get();
  }

  static void on_sweep_event(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<evhttp_connections*>(arg);
    if (self->stopped_) return;
    self->sweep(false);
    self->on_change_();
  }

  // evhttp_set_bevcb(): called by evhttp for each connection it accepts,
  // before it has the fd or the connection object.
  static bufferevent* make_bufferevent(event_base* base, void* arg) {
    auto* self = static_cast<evhttp_connections*>(arg);
    bufferevent* bev = bufferevent_socket_new(base, -1, 0);  // evhttp's own options: it closes the fd
    if (bev == nullptr) return nullptr;
    bufferevent_setwatermark(bev, EV_READ, 0, SOCKACT_LIBEVENT_INPUT_LIMIT);
    auto c = std::make_unique<evhttp_conn>();
    c->owner = self;
    c->bev = bev;
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), &evhttp_connections::on_input, c.get());
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), &evhttp_connections::on_output, c.get());
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
      void* arg = nullptr;  // evhttp's callbacks all take the connection
      bufferevent_getcb(c->bev, nullptr, nullptr, nullptr, &arg);
      const int fd = bufferevent_getfd(c->bev);
      if (arg == nullptr || fd < 0) {  // evhttp gave up on it while setting it up
        detach(*c);
        continue;
      }
      c->evcon = static_cast<evhttp_connection*>(arg);
      c->from = listeners_->socket_for(fd);
      evhttp_conn* raw = c.get();
      c->conn = act_->track(fd, [raw] { raw->owner->library_close(*raw); });
      c->registered = true;
      evhttp_connection_set_closecb(c->evcon, &evhttp_connections::on_evhttp_close, raw);
      conns_.emplace(c->bev, std::move(c));
    }
    on_change_();  // with connections open, the request deadlines are looked at
  }

  // Bytes reached (or left) evhttp's input buffer of a connection.
  static void on_input(evbuffer* in, const evbuffer_cb_info* info, void* arg) {
    auto* c = static_cast<evhttp_conn*>(arg);
    evhttp_connections* self = c->owner;
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
    if (c->registered && !c->closing) c->owner->mark(*c);
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
    evhttp_connections* self = c->owner;
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

  activation* act_;
  const libevent_listeners* listeners_;
  std::function<void()> on_change_;
  evhttp* http_ = nullptr;
  event* sweep_ = nullptr;
  bool stopped_ = false;
  std::vector<std::unique_ptr<evhttp_conn>> pending_;  // made by evhttp's bevcb, not registered yet
  std::unordered_map<bufferevent*, std::unique_ptr<evhttp_conn>> conns_;
  std::vector<bufferevent*> dirty_;
};

}  // namespace sockact::detail

#endif  // SOCKACT_DETAIL_LIBEVENT_EVHTTP_HPP
