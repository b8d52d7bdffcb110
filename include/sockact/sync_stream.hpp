// SPDX-License-Identifier: MIT
#ifndef SOCKACT_SYNC_STREAM_HPP
#define SOCKACT_SYNC_STREAM_HPP

// Asio's synchronous stream calls on a thread_driver's connection: a
// sockact::sync_stream is a SyncReadStream and a SyncWriteStream (Asio's and
// Beast's), so http::read, http::write, asio::read_until and asio::write work
// on it unchanged, while every read is reported to the connection under the
// lock the library's closes take (thread_connection::read()).
//
//   sockact::thread_driver driver(act);
//   driver.serve([](sockact::sync_stream stream, const sockact::server_socket& from) {
//     http::read_header(stream, buffer, parser, ec);  stream.connection()->headers_received();
//     http::read(stream, buffer, parser, ec);         stream.connection()->request_received();
//     http::write(stream, response, ec);              stream.connection()->response_sent(buffer.size());
//     stream.close();                                 // FIN, then the lingering close
//   });
//
// Boost.Asio or standalone asio, as <sockact/asio.hpp> selects.

#include <sockact/asio.hpp>
#include <sockact/thread_driver.hpp>

#include <sys/uio.h>
#include <cerrno>
#include <cstddef>
#include <utility>

namespace sockact {
inline namespace SOCKACT_ASIO_NAMESPACE {

/// A connection that thread_driver::serve() accepted, as a blocking Asio
/// stream: read_some() and write_some(), each with the error_code overload
/// and the throwing one. EOF (or a close by the library: idle at the drain,
/// a request deadline) is asio::error::eof; errors are errno values in Asio's
/// system category. No executor and no asynchronous calls: one thread
/// serves the connection. Made from the thread_socket serve() hands over
/// (implicitly, so a handler may take a sync_stream). Move-only.
/// @code
///   void session(sockact::sync_stream& stream) {
///     beast::flat_buffer buffer;
///     http::request<http::string_body> req;
///     http::read(stream, buffer, req, ec);
///     stream.connection()->request_received();
///   }
/// @endcode
class sync_stream {
 public:
  /// Takes the socket (and its registration) serve() made.
  // Implicit: a handler of serve() may take a sync_stream.
  sync_stream(thread_socket&& socket) noexcept : socket_(std::move(socket)) {}
  sync_stream(sync_stream&&) noexcept = default;
  sync_stream& operator=(sync_stream&&) noexcept = default;
  sync_stream(const sync_stream&) = delete;
  sync_stream& operator=(const sync_stream&) = delete;
  ~sync_stream() = default;

  /// Reads some bytes into the first non-empty buffer of `buffers`, blocking
  /// until at least one arrives, and reports them to the connection.
  /// @param ec asio::error::eof at EOF or once the library closed the
  ///        connection; an errno value (Asio's system category) on error.
  /// @return the count read; 0 with `ec` set, or 0 when every buffer is empty.
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, asio_error_code& ec) {
    for (auto it = asio_ns::buffer_sequence_begin(buffers); it != asio_ns::buffer_sequence_end(buffers);
         ++it) {
      const asio_ns::mutable_buffer b(*it);
      if (b.size() == 0) continue;
      const ssize_t n = socket_.read(b.data(), b.size());
      return finish(n, ec);
    }
    ec = asio_error_code();
    return 0;
  }
  /// read_some() that throws.
  /// @throws the system_error of the selected Asio (std::system_error or boost::system::system_error).
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    return or_throw([&](asio_error_code& ec) { return read_some(buffers, ec); }, "read_some");
  }

  /// Writes some of `buffers` (several at once, with sendmsg(2)), blocking
  /// until at least one byte is written; never raises SIGPIPE.
  /// @param ec an errno value in Asio's system category (broken_pipe once the
  ///        connection was closed, connection_reset when the client reset it).
  /// @return the count written; 0 with `ec` set, or 0 when every buffer is empty.
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, asio_error_code& ec) {
    iovec iov[max_buffers];
    std::size_t count = 0;
    for (auto it = asio_ns::buffer_sequence_begin(buffers);
         it != asio_ns::buffer_sequence_end(buffers) && count < max_buffers; ++it) {
      const asio_ns::const_buffer b(*it);
      if (b.size() != 0) iov[count++] = iovec{const_cast<void*>(b.data()), b.size()};
    }
    if (count == 0) {
      ec = asio_error_code();
      return 0;
    }
    return finish(socket_.write(iov, count), ec);
  }
  /// write_some() that throws.
  /// @throws the system_error of the selected Asio (std::system_error or boost::system::system_error).
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    return or_throw([&](asio_error_code& ec) { return write_some(buffers, ec); }, "write_some");
  }

  /// The registration: `->` reaches headers_received(), request_received(),
  /// response_sent(), keep_alive(), parsed(), ...
  thread_connection& connection() noexcept { return socket_.connection(); }
  /// The socket underneath (its fd, read(), write()).
  thread_socket& socket() noexcept { return socket_; }

  /// The server is done with the connection (after its last response): FIN,
  /// then the library's lingering close. The fd is closed at destruction.
  void close() { socket_.close(); }

 private:
  static constexpr std::size_t max_buffers = 64;  // more are written by the next call

  // The throwing form of a call that takes an error_code.
  template <class Call>
  static std::size_t or_throw(Call call, const char* what) {
    asio_error_code ec;
    const std::size_t n = call(ec);
    asio_ns::detail::throw_error(ec, what);
    return n;
  }

  static std::size_t finish(ssize_t n, asio_error_code& ec) {
    if (n > 0) {
      ec = asio_error_code();
      return static_cast<std::size_t>(n);
    }
    if (n == 0)
      ec = asio_ns::error::eof;
    else
      ec = asio_error_code(errno, asio_ns::error::get_system_category());
    return 0;
  }

  thread_socket socket_;
};

}  // namespace SOCKACT_ASIO_NAMESPACE
}  // namespace sockact

#endif  // SOCKACT_SYNC_STREAM_HPP
