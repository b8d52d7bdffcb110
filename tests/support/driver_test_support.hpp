// Helpers for tests that run a driver in this process against real loopback
// clients: the library's log lines collected, a configuration that binds its
// own socket with short timeouts, and a blocking HTTP/1.1 client.
// SPDX-License-Identifier: MIT
#ifndef SOCKACT_TESTS_SUPPORT_DRIVER_TEST_SUPPORT_HPP
#define SOCKACT_TESTS_SUPPORT_DRIVER_TEST_SUPPORT_HPP

#include <sockact/activation.hpp>

#include "test_support.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sockact_test {

// activation_config::log is a plain function pointer: the lines live here.
struct log_store {
  std::mutex mutex;
  std::vector<std::string> lines;
};
inline log_store& captured_log() {
  static log_store store;
  return store;
}

/// An activation_config::log that keeps every line for logged().
inline void capture_log(const std::string& line) {
  std::lock_guard<std::mutex> lock(captured_log().mutex);
  captured_log().lines.push_back(line);
}

/// Forgets the lines logged so far.
inline void clear_log() {
  std::lock_guard<std::mutex> lock(captured_log().mutex);
  captured_log().lines.clear();
}

/// Whether a line containing `part` was logged since the last clear_log().
inline bool logged(const std::string& part) {
  std::lock_guard<std::mutex> lock(captured_log().mutex);
  for (const std::string& l : captured_log().lines)
    if (l.find(part) != std::string::npos) return true;
  return false;
}

/// `c` for a test: LISTEN_* removed and the environment not read (the test
/// binds c.listen.address itself), the given idle and shutdown timeouts, a
/// 300 ms grace for new connections and linger, the log captured afresh.
inline sockact::activation_config test_config(sockact::activation_config c, std::chrono::milliseconds idle,
                                              std::chrono::milliseconds shutdown) {
  for (const char* v : listen_variables) ::unsetenv(v);
  clear_log();
  c.read_environment = false;
  c.lifecycle.idle_timeout = idle;
  c.lifecycle.idle_only_when_activated = false;
  c.lifecycle.shutdown_timeout = shutdown;
  c.lifecycle.new_connection_grace = std::chrono::milliseconds(300);
  c.lifecycle.linger = std::chrono::milliseconds(300);
  c.log = capture_log;
  return c;
}

/// A blocking client of 127.0.0.1:`port` with a 3 s receive timeout.
inline owned_fd http_client(int port) {
  owned_fd fd(connect_loopback(port));
  const timeval tv{3, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

inline void send_all(int fd, const std::string& s) {
  (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}

/// One line (without '\n'); "" at EOF, "<error: ...>" on an error.
inline std::string read_line(int fd) {
  std::string line;
  char c = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, &c, 1, 0);
    if (n == 0) return line;
    if (n < 0) return "<error: " + std::string(std::strerror(errno)) + ">";
    if (c == '\n') return line;
    line += c;
  }
}

/// Everything until EOF (or the receive timeout).
inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

/// Reads until `count` responses (by their heads and Content-Length) are in,
/// or EOF/timeout; with `eof`, reads to EOF or timeout and tells which.
inline std::string read_responses(int fd, int count, bool* eof = nullptr) {
  std::string in;
  char buf[4096];
  for (;;) {
    int complete = 0;
    std::size_t at = 0;
    for (;;) {
      const std::size_t head = in.find("\r\n\r\n", at);
      if (head == std::string::npos) break;
      std::size_t length = 0;
      const std::size_t cl = in.find("Content-Length: ", at);
      if (cl != std::string::npos && cl < head) length = std::strtoul(in.c_str() + cl + 16, nullptr, 10);
      if (in.size() < head + 4 + length) break;
      at = head + 4 + length;
      ++complete;
    }
    if (complete >= count && eof == nullptr) return in;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (eof != nullptr) *eof = n == 0;
      return in;
    }
    in.append(buf, static_cast<std::size_t>(n));
  }
}

/// What the kernel says of a TCP connection: its pending error (0 when not
/// reset) and its TCP state (TCP_CLOSE, TCP_CLOSE_WAIT, ...).
struct tcp_condition {
  int error = 0;
  unsigned state = 0;
};
inline tcp_condition tcp_condition_of(int fd) {
  tcp_condition c;
  socklen_t len = sizeof c.error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &c.error, &len);
  tcp_info info{};
  len = sizeof info;
  ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
  c.state = info.tcpi_state;
  return c;
}

/// The line protocol of the tests' thread-per-connection servers, served on
/// `fd` through `conn` (a thread_connection): each "GET <ms>\n" is a request
/// whose work waits up to <ms> for `fd` to turn readable (cut short once the
/// library shut the read side or closed the connection under it), answered
/// through `write(text)` (false: it could not) with "done <ms>\n", or
/// "done <ms> close\n" while draining, after which the connection is closed.
/// Returns at EOF, on a read error, or after that close.
template <class Connection, class Write>
void serve_lines(int fd, Connection& conn, Write write) {
  std::string in;
  char buf[512];
  bool open = true;
  while (open) {
    const ssize_t n = conn.read(buf, sizeof buf);  // reports what it read
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
    std::size_t eol;
    while (open && (eol = in.find('\n')) != std::string::npos) {
      const int wait_ms = std::atoi(in.c_str() + 4);
      in.erase(0, eol + 1);
      conn->request_received();
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, wait_ms);
      const bool keep = conn->keep_alive(in.size());
      if (!write("done " + std::to_string(wait_ms) + (keep ? "\n" : " close\n"))) break;
      conn->response_sent(in.size());
      if (!keep) {
        conn.close();
        open = false;
      }
    }
  }
}

/// A client of 127.0.0.1:`port` sends `request`; `in_flight` later this
/// process gets SIGINT, and `settle` later SIGINT again. Says whether the
/// client connected (its fd, for the caller to close), whether both signals
/// were sent, whether `driver` was still running (draining, not stopped)
/// before the second, and when the second was sent.
struct two_signals {
  int fd = -1;
  bool sent = false;
  bool running_after_first = false;
  std::chrono::steady_clock::time_point second;
};
template <class Driver>
two_signals sigint_twice_in_flight(Driver& driver, int port, const std::string& request,
                                   std::chrono::milliseconds in_flight, std::chrono::milliseconds settle) {
  two_signals r;
  r.fd = connect_loopback(port);
  if (r.fd < 0) return r;
  send_all(r.fd, request);
  std::this_thread::sleep_for(in_flight);
  if (::kill(::getpid(), SIGINT) != 0) return r;
  std::this_thread::sleep_for(settle);
  r.running_after_first = !driver.finished();
  r.second = std::chrono::steady_clock::now();
  r.sent = ::kill(::getpid(), SIGINT) == 0;
  return r;
}

/// A GET request for `path`, with `Connection: close` if asked.
inline std::string http_get(const std::string& path, bool close = false) {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
}

}  // namespace sockact_test

#endif  // SOCKACT_TESTS_SUPPORT_DRIVER_TEST_SUPPORT_HPP
