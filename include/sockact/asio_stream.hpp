// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_STREAM_HPP
#define SOCKACT_ASIO_STREAM_HPP

// sockact::tracked_stream<>: the session's socket (or beast::tcp_stream) as a
// tracked connection. It registers itself with the activation an asio_driver
// runs on its io_context, reports every read, and the activation closes it on
// its strand. Part of <sockact/asio.hpp>.

#include <sockact/activation.hpp>
#include <sockact/asio_flavour.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

namespace sockact {
inline namespace SOCKACT_ASIO_NAMESPACE {

namespace asio_detail {

// How the activation closes a tracked_stream: its reads are known
// (read_started()), so an idle close may cancel the read in flight and
// decide on its completion.
template <class Socket>
struct close_tracked_socket {
  Socket* socket;
  void operator()() const {
    asio_error_code ignored;
    socket->close(ignored);
  }
  void interrupt() const {
    asio_error_code ignored;
    socket->cancel(ignored);
  }
};

template <class T, class = void>
struct has_socket_member : std::false_type {};
template <class T>
struct has_socket_member<T, std::void_t<decltype(std::declval<T&>().socket())>> : std::true_type {};

// The socket under a stream: beast::basic_stream's socket(), or the stream itself.
template <class Stream>
auto& socket_of(Stream& s) noexcept {
  if constexpr (has_socket_member<Stream>::value)
    return s.socket();
  else
    return s;
}

// The activation an asio_driver runs on an execution context: a
// tracked_stream made on that context registers itself with it.
class activation_service final : public asio_ns::execution_context::service {
 public:
  static inline asio_ns::execution_context::id id;
  explicit activation_service(asio_ns::execution_context& c) : asio_ns::execution_context::service(c) {}
  std::atomic<activation*> act{nullptr};

 private:
  void shutdown() override {}
};

template <class Executor>
activation* activation_of(const Executor& executor) {
  asio_ns::execution_context& context = asio_ns::query(executor, asio_ns::execution::context);
  if (!asio_ns::has_service<activation_service>(context)) return nullptr;
  return asio_ns::use_service<activation_service>(context).act.load(std::memory_order_acquire);
}

// Serialises the activation's closes with the stream's destruction, whatever
// thread each runs on: a close that comes after it does nothing.
struct close_guard {
  std::mutex mutex;
  bool alive = true;
};

template <class Executor>
struct guarded_post {
  Executor executor;
  std::shared_ptr<close_guard> guard;

  template <class F>
  void operator()(F&& f) const {
    asio_ns::dispatch(executor, [guard = guard, f = std::forward<F>(f)]() mutable {
      const std::lock_guard<std::mutex> lock(guard->mutex);
      if (guard->alive) f();
    });
  }
};

}  // namespace asio_detail

/// A stream (a socket, or beast::tcp_stream) that is a tracked connection:
/// made on an io_context that an asio_driver runs (e.g. from the socket the
/// driver handed over), it registers itself with the driver's activation;
/// the activation closes it (on its strand) when the drain or a request
/// deadline says so; and every read is reported (connection::received), so
/// that a request whose first bytes a framework has buffered (Beast's
/// http::async_read) is busy, not idle, and its deadlines run.
/// It is an AsyncReadStream and AsyncWriteStream over `NextLayer`, and it
/// does not move: make it a member of the session, in place of the socket.
/// @code
///   sockact::tracked_stream<beast::tcp_stream> stream_;  // was: beast::tcp_stream stream_;
///   http::async_read(stream_, buffer_, req_, ...);        // as before
///   stream_.connection().request_received();             // the handle
/// @endcode
template <class NextLayer>
class tracked_stream {
 public:
  using next_layer_type = NextLayer;
  using executor_type = typename NextLayer::executor_type;

  /// Constructs the next layer from `args` (e.g. the accepted socket), and
  /// registers the connection when an asio_driver runs its context.
  template <class... Args>
  explicit tracked_stream(Args&&... args) : next_(std::forward<Args>(args)...) {
    if (activation* act = asio_detail::activation_of(next_.get_executor())) track(*act);
  }
  tracked_stream(const tracked_stream&) = delete;
  tracked_stream& operator=(const tracked_stream&) = delete;
  ~tracked_stream() { untrack(); }

  /// Registers the connection with `act` (needed only without an asio_driver).
  void track(activation& act) {
    untrack();
    guard_ = std::make_shared<asio_detail::close_guard>();
    auto& socket = asio_detail::socket_of(next_);
    using socket_type = std::remove_reference_t<decltype(socket)>;
    using executor = std::decay_t<decltype(socket.get_executor())>;
    conn_ = act.track(socket.native_handle(), asio_detail::close_tracked_socket<socket_type>{&socket},
                      asio_detail::guarded_post<executor>{socket.get_executor(), guard_});
  }
  /// The handle: request_received(), response_sent(buffered), keep_alive(buffered), close().
  sockact::connection& connection() noexcept { return conn_; }

  NextLayer& next_layer() noexcept { return next_; }
  const NextLayer& next_layer() const noexcept { return next_; }
  executor_type get_executor() noexcept { return next_.get_executor(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio_ns::async_compose<Token, void(asio_error_code, std::size_t)>(
        [this, buffers, started = false](auto& self, asio_error_code ec = {}, std::size_t n = 0) mutable {
          if (started) {
            // Bytes the reactor took count before anything else runs on the strand.
            switch (conn_.read_finished(n, ec == asio_ns::error::operation_aborted)) {
              case connection::read_outcome::complete:
                return self.complete(ec, n);
              case connection::read_outcome::closed:
                return self.complete(asio_error_code(asio_ns::error::operation_aborted), std::size_t{0});
              case connection::read_outcome::read_again:
                break;  // the library's own cancel, and the connection stays: read on
            }
          }
          started = true;
          conn_.read_started();
          next_.async_read_some(buffers, std::move(self));
        },
        token, next_);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return next_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  void untrack() noexcept {
    if (guard_) {
      const std::lock_guard<std::mutex> lock(guard_->mutex);
      guard_->alive = false;
    }
    conn_ = sockact::connection();
  }

  NextLayer next_;
  std::shared_ptr<asio_detail::close_guard> guard_;
  sockact::connection conn_;
};

}  // namespace SOCKACT_ASIO_NAMESPACE
}  // namespace sockact

#endif  // SOCKACT_ASIO_STREAM_HPP
