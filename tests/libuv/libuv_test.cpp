// The libuv adapter with real sockets and a real uv loop: listening TCP (v4,
// v6) and unix sockets accept a real client and exchange bytes; Accept=yes
// style connections and socketpairs are served; UDP receives and answers; the
// wrong kinds of fd give the right errors and stay open and untouched; an fd
// given to a handle is closed exactly once, by uv_close.
// SPDX-License-Identifier: MIT
#include <sockact/libuv.hpp>  // first: the header is self-contained
#include <sockact/listen.hpp>

#include <gtest/gtest.h>

#include "test_support.hpp"
#include "uv_run_bounded.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

int sockact_libuv_second_tu(uv_loop_t* loop);  // second_tu.cpp

namespace {

// ---------------------------------------------------------------------------
// Helpers: sockets made by hand, a bounded uv_run, a blocking client
// ---------------------------------------------------------------------------

int check(int r, const char* what) {
  if (r < 0) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
  return r;
}

/// An fd the test owns: the library's own owning type, which adopt() takes.
using test_fd = sockact::unique_fd;

bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) >= 0;
}
bool is_nonblocking(int fd) {
  return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}
bool is_listening(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v != 0;
}

struct address {
  sockaddr_storage ss{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
  int family() const { return ss.ss_family; }
};

address local_address_of(int fd) {
  address a;
  a.len = sizeof a.ss;
  check(::getsockname(fd, reinterpret_cast<sockaddr*>(&a.ss), &a.len), "getsockname");
  return a;
}

using sockact_test::ipv6_loopback_available;

/// A TCP or UDP socket on loopback with a kernel-chosen port (test_support's),
/// as the library's owning type; listening for TCP unless `listen` is false.
test_fd inet_socket(int family, int type, bool listen = true) {
  return test_fd(sockact_test::inet_socket(family, type, listen).release());
}

/// A scratch directory, removed with what is in it.
class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/sockact-libuv.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~temp_dir() {
    const std::string cmd = "rm -rf '" + path_ + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", path_.c_str());
  }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// A blocking unix socket bound to `path` (listening for stream/seqpacket).
test_fd unix_socket(const std::string& path, int type = SOCK_STREAM) {
  test_fd fd(check(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0), "socket"));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "bind");
  if (type != SOCK_DGRAM) check(::listen(fd.get(), 16), "listen");
  return fd;
}

std::pair<test_fd, test_fd> socket_pair(int type) {
  int sv[2];
  check(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), "socketpair");
  return {test_fd(sv[0]), test_fd(sv[1])};
}

/// A blocking client socket connected to `to`, with 10 s send/receive timeouts.
test_fd connect_to(const address& to) {
  test_fd fd(check(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  check(::connect(fd.get(), to.get(), to.len), "connect");
  return fd;
}

/// Sends `request` on a connected blocking socket, reads until `until` is seen
/// (or EOF, error, timeout), closes it, and returns what was read.
std::string exchange(test_fd fd, const std::string& request, const std::string& until) {
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return "send failed: " + std::string(std::strerror(errno));
  std::string got;
  char buf[256];
  while (got.find(until) == std::string::npos) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;  // fd closes here: the server sees EOF
}

// ---------------------------------------------------------------------------
// A tiny uv server: answers "ping\n" with "pong\n", closes on EOF
// ---------------------------------------------------------------------------

struct session {
  uv_loop_t* loop = nullptr;
  uv_stream_t* listener = nullptr;  // closed once the first connection has ended
  sockact::libuv_stream accepted{};
  uv_stream_t* conn = nullptr;
  uv_write_t write_req{};
  std::string received;
  bool answered = false;
  bool saw_eof = false;
  int accept_status = 0;
  int error = 0;
  char buf[4096];

  /// Serves the connection `c` (already open on the loop).
  void serve(uv_stream_t* c) {
    conn = c;
    conn->data = this;
    const int r = uv_read_start(conn, on_alloc, on_read);
    if (r < 0) fail(r);
  }

  /// Listens on `l` (already open on the loop) and serves the first connection.
  void listen_on(uv_stream_t* l) {
    listener = l;
    listener->data = this;
    const int r = uv_listen(listener, SOMAXCONN, on_connection);  // listen() again: fine
    if (r < 0) fail(r);
  }

  void fail(int status) {
    error = status;
    finish();
  }

  void finish() {
    if (conn != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(conn)))
      uv_close(reinterpret_cast<uv_handle_t*>(conn), nullptr);
    if (listener != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(listener)))
      uv_close(reinterpret_cast<uv_handle_t*>(listener), nullptr);
  }

  static void on_connection(uv_stream_t* server, int status) {
    auto* s = static_cast<session*>(server->data);
    s->accept_status = status;
    if (status < 0) return s->fail(status);
    if (server->type == UV_TCP)
      uv_tcp_init(s->loop, &s->accepted.tcp);
    else
      uv_pipe_init(s->loop, &s->accepted.pipe, 0);
    s->conn = &s->accepted.stream;  // closed by finish() from here on
    if (const int r = uv_accept(server, &s->accepted.stream); r < 0) return s->fail(r);
    s->serve(&s->accepted.stream);
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* out) {
    auto* s = static_cast<session*>(h->data);
    *out = uv_buf_init(s->buf, sizeof s->buf);
  }

  static void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t*) {
    auto* s = static_cast<session*>(stream->data);
    if (n > 0) {
      s->received.append(s->buf, static_cast<std::size_t>(n));
      if (!s->answered && s->received.find("ping\n") != std::string::npos) {
        s->answered = true;
        static char pong[] = "pong\n";
        uv_buf_t b = uv_buf_init(pong, 5);
        s->write_req.data = s;
        if (const int r = uv_write(&s->write_req, stream, &b, 1, on_written); r < 0) s->fail(r);
      }
    } else if (n == UV_EOF) {
      s->saw_eof = true;
      s->finish();
    } else if (n < 0) {
      s->fail(static_cast<int>(n));
    }
  }

  static void on_written(uv_write_t* req, int status) {
    if (status < 0) static_cast<session*>(req->data)->fail(status);
  }
};

// ---------------------------------------------------------------------------
// The fixture: one loop per test; every handle must be closed by the end
// ---------------------------------------------------------------------------

int count_handles(uv_loop_t* loop) {
  int n = 0;
  uv_walk(
      loop, [](uv_handle_t*, void* arg) { ++*static_cast<int*>(arg); }, &n);
  return n;
}

class Libuv : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    // listen_or_bind() must bind here, never take fds meant for someone else.
    for (const char* v : {"LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES"}) ::unsetenv(v);
  }
  void TearDown() override {
    EXPECT_EQ(count_handles(&loop_), 0) << "a handle was left open";
    sockact_test::uv_close_everything(&loop_);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  /// uv_run() until it returns by itself; false if it had to be stopped after `ms`.
  bool run_bounded(unsigned ms = 10000) { return sockact_test::uv_run_bounded(&loop_, ms); }

  /// Serves one ping/pong client on the listening handle `l` opened on fd.
  void serve_one_client(uv_stream_t* l, int fd) {
    session s;
    s.loop = &loop_;
    s.listen_on(l);
    const address to = local_address_of(fd);
    std::string reply;
    std::thread client([&] { reply = exchange(connect_to(to), "ping\n", "pong\n"); });
    const bool finished = run_bounded();
    client.join();
    EXPECT_TRUE(finished) << "the loop did not finish in time";
    EXPECT_EQ(s.accept_status, 0);
    EXPECT_EQ(s.error, 0) << uv_strerror(s.error);
    EXPECT_EQ(s.received, "ping\n");
    EXPECT_EQ(reply, "pong\n");
    EXPECT_TRUE(s.saw_eof);
    EXPECT_FALSE(is_open(fd)) << "uv_close must close the fd";
  }

  /// Serves a ping/pong on the connection handle `c`; the peer is `client`.
  void serve_connection(uv_stream_t* c, test_fd client, int fd) {
    session s;
    s.loop = &loop_;
    s.serve(c);
    std::string reply;
    std::thread t([&] { reply = exchange(std::move(client), "ping\n", "pong\n"); });
    const bool finished = run_bounded();
    t.join();
    EXPECT_TRUE(finished);
    EXPECT_EQ(s.error, 0) << uv_strerror(s.error);
    EXPECT_EQ(s.received, "ping\n");
    EXPECT_EQ(reply, "pong\n");
    EXPECT_TRUE(s.saw_eof);
    EXPECT_FALSE(is_open(fd));
  }

  uv_loop_t loop_{};
};

// ---------------------------------------------------------------------------
// Error codes
// ---------------------------------------------------------------------------

TEST(LibuvError, SystemErrorsAreErrnoInTheGenericCategory) {
  EXPECT_FALSE(sockact::libuv_error(0));
  EXPECT_FALSE(sockact::libuv_error(7));  // a byte count, not an error
  const std::error_code ec = sockact::libuv_error(UV_EBADF);
  EXPECT_EQ(ec.category(), std::generic_category());
  EXPECT_EQ(ec.value(), EBADF);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_EQ(sockact::libuv_error(UV_EADDRINUSE), std::errc::address_in_use);
  EXPECT_EQ(sockact::libuv_error(UV_ECONNRESET), std::errc::connection_reset);
}

TEST(LibuvError, LibuvsOwnCodesHaveTheirOwnCategory) {
  const std::error_code eof = sockact::libuv_error(UV_EOF);
  EXPECT_EQ(eof.category(), sockact::libuv_category());
  EXPECT_STREQ(eof.category().name(), "libuv");
  EXPECT_EQ(eof.message(), "end of file");
  EXPECT_EQ(sockact::libuv_error(UV_EAI_NONAME).category(), sockact::libuv_category());
  EXPECT_EQ(sockact::libuv_error(UV_EAI_NONAME).message(), uv_strerror(UV_EAI_NONAME));
}

// ---------------------------------------------------------------------------
// Listening sockets: a real client connects and exchanges bytes
// ---------------------------------------------------------------------------

#if SOCKACT_HAS_EXCEPTIONS
// The throwing half of the pair: a UDP handle on a TCP socket throws, naming
// the fd, which stays with the caller; the right handle takes it.
TEST_F(Libuv, ThrowingAdoptNamesTheFd) {
  test_fd fd = inet_socket(AF_INET, SOCK_STREAM);
  const int raw = fd.get();
  uv_udp_t wrong;
  try {
    sockact::adopt(&loop_, &wrong, std::move(fd));
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), sockact::errc::wrong_type);
    EXPECT_NE(std::string(e.what()).find("fd " + std::to_string(raw)), std::string::npos) << e.what();
  }
  EXPECT_EQ(fd.get(), raw) << "still the caller's";  // NOLINT(bugprone-use-after-move)
  uv_tcp_t server;
  sockact::adopt(&loop_, &server, std::move(fd));
  EXPECT_FALSE(fd);  // NOLINT(bugprone-use-after-move)
  serve_one_client(reinterpret_cast<uv_stream_t*>(&server), raw);
}
#endif

TEST_F(Libuv, ListeningTcpV4AcceptsAndExchanges) {
  test_fd fd = inet_socket(AF_INET, SOCK_STREAM);
  ASSERT_FALSE(is_nonblocking(fd.get()));  // as systemd passes it without NonBlocking=yes
  uv_tcp_t server;
  std::error_code ec;
  const int raw = fd.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &server, std::move(fd), ec)) << ec.message();
  EXPECT_FALSE(ec);
  EXPECT_FALSE(fd) << "the handle owns it now";  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(is_nonblocking(raw)) << "libuv sets O_NONBLOCK";
  uv_os_fd_t in_handle = -1;
  EXPECT_EQ(uv_fileno(reinterpret_cast<uv_handle_t*>(&server), &in_handle), 0);
  EXPECT_EQ(in_handle, raw);
  serve_one_client(reinterpret_cast<uv_stream_t*>(&server), raw);
}

TEST_F(Libuv, ListeningTcpV6AcceptsAndExchanges) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1)";
  test_fd fd = inet_socket(AF_INET6, SOCK_STREAM);
  uv_tcp_t server;
  std::error_code ec;
  const int raw = fd.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &server, std::move(fd), ec)) << ec.message();
  serve_one_client(reinterpret_cast<uv_stream_t*>(&server), raw);
}

TEST_F(Libuv, ListeningUnixSocketAcceptsAndExchanges) {
  temp_dir dir;
  const std::string path = dir.file("server.sock");
  test_fd fd = unix_socket(path);
  uv_pipe_t server;
  std::error_code ec;
  const int raw = fd.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &server, std::move(fd), ec)) << ec.message();
  serve_one_client(reinterpret_cast<uv_stream_t*>(&server), raw);
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0)
      << "an opened (not bound) uv_pipe_t must not unlink the socket file";
}

TEST_F(Libuv, OpenStreamPicksTcpOrPipe) {
  test_fd tcp = inet_socket(AF_INET, SOCK_STREAM);
  sockact::libuv_stream a;
  std::error_code ec;
  const int tcp_raw = tcp.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &a, std::move(tcp), ec)) << ec.message();
  uv_stream_t* s = &a.stream;
  EXPECT_EQ(s->type, UV_TCP);
  serve_one_client(s, tcp_raw);

  temp_dir dir;
  test_fd unix_fd = unix_socket(dir.file("s.sock"));
  sockact::libuv_stream b;
  const int unix_raw = unix_fd.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &b, std::move(unix_fd), ec)) << ec.message();
  s = &b.stream;
  EXPECT_EQ(s->type, UV_NAMED_PIPE);
  serve_one_client(s, unix_raw);
}

// ---------------------------------------------------------------------------
// Connections (Accept=yes, socketpairs)
// ---------------------------------------------------------------------------

TEST_F(Libuv, AcceptedTcpConnectionIsServed) {
  test_fd listening = inet_socket(AF_INET, SOCK_STREAM);
  test_fd client = connect_to(local_address_of(listening.get()));
  test_fd conn(check(::accept4(listening.get(), nullptr, nullptr, SOCK_CLOEXEC), "accept"));
  uv_tcp_t handle;
  std::error_code ec;
  const int raw = conn.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &handle, std::move(conn), ec)) << ec.message();
  serve_connection(reinterpret_cast<uv_stream_t*>(&handle), std::move(client), raw);
}

TEST_F(Libuv, AcceptedTcpV6ConnectionIsServedAsAStream) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1)";
  test_fd listening = inet_socket(AF_INET6, SOCK_STREAM);
  test_fd client = connect_to(local_address_of(listening.get()));
  test_fd conn(check(::accept4(listening.get(), nullptr, nullptr, SOCK_CLOEXEC), "accept"));
  sockact::libuv_stream handle;
  std::error_code ec;
  const int raw = conn.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &handle, std::move(conn), ec)) << ec.message();
  serve_connection(&handle.stream, std::move(client), raw);
}

TEST_F(Libuv, UnixSocketpairIsServed) {
  auto [ours, theirs] = socket_pair(SOCK_STREAM);
  uv_pipe_t handle;
  std::error_code ec;
  const int raw = ours.get();
  ASSERT_TRUE(sockact::adopt(&loop_, &handle, std::move(ours), ec)) << ec.message();
  serve_connection(reinterpret_cast<uv_stream_t*>(&handle), std::move(theirs), raw);
}

// ---------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------

struct udp_session {
  char buf[2048];
  std::string received;
  address from;
  int error = 0;
};

void udp_receives_and_answers(uv_loop_t* loop, int family, const std::function<bool()>& run) {
  test_fd fd = inet_socket(family, SOCK_DGRAM);
  const address server_address = local_address_of(fd.get());
  uv_udp_t udp;
  std::error_code ec;
  const int raw = fd.get();
  ASSERT_TRUE(sockact::adopt(loop, &udp, std::move(fd), ec)) << ec.message();

  udp_session s;
  udp.data = &s;
  ASSERT_EQ(uv_udp_recv_start(
                &udp,
                [](uv_handle_t* h, size_t, uv_buf_t* out) {
                  auto* us = static_cast<udp_session*>(h->data);
                  *out = uv_buf_init(us->buf, sizeof us->buf);
                },
                [](uv_udp_t* h, ssize_t n, const uv_buf_t*, const sockaddr* addr, unsigned) {
                  auto* us = static_cast<udp_session*>(h->data);
                  if (n < 0) us->error = static_cast<int>(n);
                  if (n <= 0 || addr == nullptr) return;  // 0 with no address: nothing more to read
                  us->received.assign(us->buf, static_cast<std::size_t>(n));
                  us->from.len = static_cast<socklen_t>(addr->sa_family == AF_INET ? sizeof(sockaddr_in)
                                                                                   : sizeof(sockaddr_in6));
                  std::memcpy(&us->from.ss, addr, us->from.len);
                  char answer[] = "olleh";
                  uv_buf_t b = uv_buf_init(answer, 5);
                  if (const int r = uv_udp_try_send(h, &b, 1, addr); r < 0) us->error = r;
                  uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
                }),
            0);

  test_fd client(check(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket"));
  timeval tv{10, 0};
  ::setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ASSERT_EQ(::sendto(client.get(), "hello", 5, 0, server_address.get(), server_address.len), 5);
  EXPECT_TRUE(run());
  EXPECT_EQ(s.error, 0) << uv_strerror(s.error);
  EXPECT_EQ(s.received, "hello");
  EXPECT_EQ(s.from.family(), family);
  char back[16] = {};
  EXPECT_EQ(::recv(client.get(), back, sizeof back, 0), 5);
  EXPECT_STREQ(back, "olleh");
  EXPECT_FALSE(is_open(raw));
}

TEST_F(Libuv, UdpV4ReceivesAndAnswers) {
  udp_receives_and_answers(&loop_, AF_INET, [this] { return run_bounded(); });
}

TEST_F(Libuv, UdpV6ReceivesAndAnswers) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1)";
  udp_receives_and_answers(&loop_, AF_INET6, [this] { return run_bounded(); });
}

// ---------------------------------------------------------------------------
// The wrong kinds: clear errors, the fd stays open and untouched, the handle
// is not initialized
// ---------------------------------------------------------------------------

enum class want { tcp, pipe, udp, stream };

const char* want_name(want w) {
  switch (w) {
    case want::tcp:
      return "adopt(uv_tcp_t*)";
    case want::pipe:
      return "adopt(uv_pipe_t*)";
    case want::udp:
      return "adopt(uv_udp_t*)";
    case want::stream:
      return "adopt(libuv_stream*)";
  }
  return "?";
}

struct fd_case {
  const char* name;
  std::function<test_fd(const temp_dir&)> make;  // a fresh fd per call
  // The expected result of adopt() into a uv_tcp_t, uv_pipe_t, uv_udp_t, libuv_stream; empty = success.
  std::error_code tcp, pipe, udp, stream;
  bool needs_ipv6 = false;
};

std::error_code ok() {
  return {};
}
std::error_code bad_fd() {
  return {EBADF, std::generic_category()};
}

std::vector<fd_case> fd_cases() {
  using sockact::errc;
  const std::error_code not_socket = errc::not_a_socket, family = errc::wrong_family, type = errc::wrong_type;
  std::vector<fd_case> v;
  v.push_back({"tcp v4 listening", [](const temp_dir&) { return inet_socket(AF_INET, SOCK_STREAM); }, ok(),
               family, type, ok()});
  v.push_back({"tcp v6 listening", [](const temp_dir&) { return inet_socket(AF_INET6, SOCK_STREAM); }, ok(),
               family, type, ok(), true});
  v.push_back({"tcp v4 bound, not listening",
               [](const temp_dir&) { return inet_socket(AF_INET, SOCK_STREAM, false); }, ok(), family, type,
               ok()});
  v.push_back(
      {"udp v4", [](const temp_dir&) { return inet_socket(AF_INET, SOCK_DGRAM); }, type, family, ok(), type});
  v.push_back({"udp v6", [](const temp_dir&) { return inet_socket(AF_INET6, SOCK_DGRAM); }, type, family,
               ok(), type, true});
  v.push_back({"unix stream listening", [](const temp_dir& d) { return unix_socket(d.file("stream.sock")); },
               family, ok(), family, ok()});
  v.push_back({"unix stream socketpair", [](const temp_dir&) { return socket_pair(SOCK_STREAM).first; },
               family, ok(), family, ok()});
  v.push_back({"unix datagram socketpair", [](const temp_dir&) { return socket_pair(SOCK_DGRAM).first; },
               family, type, family, type});
  v.push_back({"unix seqpacket listening",
               [](const temp_dir& d) { return unix_socket(d.file("seq.sock"), SOCK_SEQPACKET); }, family,
               type, family, type});
  v.push_back({"netlink",
               [](const temp_dir&) {
                 return test_fd(check(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0), "netlink socket"));
               },
               family, family, family, family});
  v.push_back({"pipe(2)",
               [](const temp_dir&) {
                 int p[2];
                 check(::pipe2(p, O_CLOEXEC), "pipe");
                 ::close(p[1]);
                 return test_fd(p[0]);
               },
               not_socket, not_socket, not_socket, not_socket});
  v.push_back({"/dev/null",
               [](const temp_dir&) { return test_fd(check(::open("/dev/null", O_RDWR), "open")); },
               not_socket, not_socket, not_socket, not_socket});
  v.push_back({"closed fd",
               [](const temp_dir&) {
                 const int fd = check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket");
                 ::close(fd);
                 return test_fd(-fd - 2);  // remembers the number, owns nothing (see number_of)
               },
               bad_fd(), bad_fd(), bad_fd(), bad_fd()});
  v.push_back({"-1", [](const temp_dir&) { return test_fd(); }, bad_fd(), bad_fd(), bad_fd(), bad_fd()});
  return v;
}

// "closed fd" stores its number encoded below -1 so that test_fd does not close it.
int number_of(const test_fd& fd) {
  return fd.get() < -1 ? -fd.get() - 2 : fd.get();
}

/// Opens the handle `w` asks for on fd; true on success, with *opened the handle.
bool open_as(want w, uv_loop_t* loop, test_fd& fd, sockact::libuv_stream& stream, uv_udp_t& udp,
             uv_handle_t** opened, std::error_code& ec) {
  switch (w) {
    case want::tcp:
      *opened = &stream.handle;
      return sockact::adopt(loop, &stream.tcp, std::move(fd), ec);
    case want::pipe:
      *opened = &stream.handle;
      return sockact::adopt(loop, &stream.pipe, std::move(fd), ec);
    case want::udp:
      *opened = reinterpret_cast<uv_handle_t*>(&udp);
      return sockact::adopt(loop, &udp, std::move(fd), ec);
    case want::stream:
      *opened = &stream.handle;
      return sockact::adopt(loop, &stream, std::move(fd), ec);
  }
  return false;
}

TEST_F(Libuv, WrongKindsGiveClearErrorsAndLeaveTheFdAlone) {
  temp_dir dir;
  const bool v6 = ipv6_loopback_available();
  int cells = 0;
  for (const fd_case& c : fd_cases()) {
    if (c.needs_ipv6 && !v6) continue;
    for (const want w : {want::tcp, want::pipe, want::udp, want::stream}) {
      SCOPED_TRACE(std::string(c.name) + " -> " + want_name(w));
      ::unlink(dir.file("stream.sock").c_str());
      ::unlink(dir.file("seq.sock").c_str());
      test_fd fd = c.make(dir);
      const int n = number_of(fd);
      const std::error_code expected = w == want::tcp    ? c.tcp
                                       : w == want::pipe ? c.pipe
                                       : w == want::udp  ? c.udp
                                                         : c.stream;
      const bool was_open = is_open(n);
      const int flags_before = was_open ? ::fcntl(n, F_GETFL) : -1;
      sockact::libuv_stream stream;
      uv_udp_t udp;
      uv_handle_t* opened = nullptr;
      std::error_code ec = make_error_code(std::errc::interrupted);  // must be overwritten
      const bool success = open_as(w, &loop_, fd, stream, udp, &opened, ec);
      ++cells;
      if (!expected) {
        ASSERT_TRUE(success) << ec.message();
        EXPECT_FALSE(ec);
        EXPECT_EQ(count_handles(&loop_), 1);
        uv_os_fd_t in_handle = -1;
        EXPECT_EQ(uv_fileno(opened, &in_handle), 0);
        EXPECT_EQ(in_handle, n);
        EXPECT_TRUE(is_nonblocking(n));
        EXPECT_FALSE(fd) << "the handle owns the fd";
        uv_close(opened, nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);
        EXPECT_FALSE(is_open(n)) << "uv_close closes the fd";
      } else {
        EXPECT_FALSE(success);
        EXPECT_EQ(ec, expected) << "got " << ec.category().name() << ":" << ec.value() << " " << ec.message();
        EXPECT_EQ(count_handles(&loop_), 0) << "the handle must not be initialized on error";
        EXPECT_EQ(is_open(n), was_open) << "the fd must stay open, owned by the caller";
        EXPECT_EQ(number_of(fd), n) << "the caller's unique_fd keeps it";
        if (was_open) {
          EXPECT_EQ(::fcntl(n, F_GETFL), flags_before) << "the fd must be left unchanged";
        }
      }
    }
  }
  EXPECT_GE(cells, 40);
}

TEST_F(Libuv, ErrorMessagesSayWhatTheFdIs) {
  temp_dir dir;
  test_fd udp_fd = inet_socket(AF_INET, SOCK_DGRAM);
  uv_tcp_t tcp;
  std::error_code ec;
  std::string why;
  EXPECT_FALSE(sockact::adopt(&loop_, &tcp, std::move(udp_fd), ec, &why));
  EXPECT_EQ(ec, sockact::errc::wrong_type);
  EXPECT_EQ(
      why.rfind("fd " + std::to_string(udp_fd.get()) +  // NOLINT(bugprone-use-after-move)
                    ": wanted a TCP socket (inet or inet6 stream) for a uv_tcp_t, got inet datagram udp "
                    "127.0.0.1:",
                0),
      0u)
      << why;
  EXPECT_TRUE(is_open(udp_fd.get()));  // NOLINT(bugprone-use-after-move): kept on error

  test_fd unix_fd = unix_socket(dir.file("t.sock"));
  uv_udp_t udp;
  EXPECT_FALSE(sockact::adopt(&loop_, &udp, std::move(unix_fd), ec));
  EXPECT_EQ(ec, sockact::errc::wrong_family);
  uv_pipe_t pipe;
  test_fd none;
  EXPECT_FALSE(sockact::adopt(&loop_, &pipe, std::move(none), ec, &why));
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_EQ(why, "fd -1 is not open");
  sockact::libuv_stream stream;
  EXPECT_FALSE(sockact::adopt(&loop_, &stream, std::move(udp_fd), ec));
  EXPECT_EQ(ec, sockact::errc::wrong_type);
  EXPECT_EQ(count_handles(&loop_), 0);
}

TEST_F(Libuv, ErrorsNameTheListenerAndWhatItIs) {
  sockact::server_socket l;
  l.fd = inet_socket(AF_INET, SOCK_STREAM);
  l.name = "web";
  const int n = l.fd.get();
  const std::string address = sockact::describe_fd(n).local_address;
  uv_pipe_t pipe;
  std::error_code ec;
  std::string why;
  EXPECT_FALSE(sockact::adopt(&loop_, &pipe, std::move(l), ec, &why));
  EXPECT_EQ(ec, sockact::errc::wrong_family);
  EXPECT_EQ(why,
            "fd " + std::to_string(n) +
                " (\"web\"): wanted a unix stream socket for a uv_pipe_t, got inet stream tcp listening " +
                address + " blocking");
  EXPECT_EQ(l.fd.get(), n);  // NOLINT(bugprone-use-after-move): kept on error
}

TEST_F(Libuv, NullLoopOrHandleIsEinval) {
  test_fd fd = inet_socket(AF_INET, SOCK_STREAM);
  uv_tcp_t tcp;
  std::error_code ec;
  EXPECT_FALSE(sockact::adopt(nullptr, &tcp, std::move(fd), ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(sockact::adopt(&loop_, static_cast<uv_tcp_t*>(nullptr), std::move(fd), ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(sockact::adopt(&loop_, static_cast<sockact::libuv_stream*>(nullptr), std::move(fd), ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_TRUE(is_open(fd.get()));  // NOLINT(bugprone-use-after-move): kept on error
}

TEST_F(Libuv, AnFdAlreadyInAHandleOfThisLoopIsEexist) {
  test_fd fd = inet_socket(AF_INET, SOCK_STREAM);
  const int raw = fd.get();
  uv_tcp_t first, second;
  std::error_code ec;
  ASSERT_TRUE(sockact::adopt(&loop_, &first, std::move(fd), ec));
  // A second owner of the same number (a bug the check catches): not taken.
  test_fd again(raw);
  std::string why;
  EXPECT_FALSE(sockact::adopt(&loop_, &second, std::move(again), ec, &why));
  EXPECT_EQ(ec, std::errc::file_exists);
  EXPECT_NE(why.find("is already in a handle of this loop"), std::string::npos) << why;
  EXPECT_EQ(count_handles(&loop_), 1) << "the second handle must not be initialized";
  sockact::libuv_stream third;
  EXPECT_FALSE(sockact::adopt(&loop_, &third, std::move(again), ec));
  EXPECT_EQ(ec, std::errc::file_exists);
  EXPECT_EQ(again.release(), raw);  // NOLINT(bugprone-use-after-move): kept on error; not ours to close
  EXPECT_TRUE(is_open(raw));
  uv_close(reinterpret_cast<uv_handle_t*>(&first), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_FALSE(is_open(raw));
}

// ---------------------------------------------------------------------------
// Ownership: the fd (or listener) moved in is taken on success only; closed exactly once
// ---------------------------------------------------------------------------

sockact::server_socket bind_one(const std::string& address) {
  sockact::listen_config config;
  config.address = address;
  config.nonblocking = false;  // as systemd passes sockets by default
  std::error_code ec;
  std::string why;
  std::vector<sockact::server_socket> ls = sockact::listen_or_bind(config, ec, &why);
  if (ec || ls.size() != 1) throw std::runtime_error("listen_or_bind " + address + ": " + why);
  return std::move(ls.front());
}

TEST_F(Libuv, ListenerIsTakenOnSuccessOnly) {
  sockact::server_socket l = bind_one("127.0.0.1:0");
  const int n = l.fd.get();
  uv_udp_t udp;
  std::error_code ec;
  EXPECT_FALSE(sockact::adopt(&loop_, &udp, std::move(l), ec));
  EXPECT_EQ(ec, sockact::errc::wrong_type);
  EXPECT_EQ(l.fd.get(), n) << "on error the listener keeps its fd";  // NOLINT(bugprone-use-after-move)
  uv_pipe_t pipe;
  EXPECT_FALSE(sockact::adopt(&loop_, &pipe, std::move(l), ec));
  EXPECT_EQ(ec, sockact::errc::wrong_family);
  EXPECT_EQ(l.fd.get(), n);  // NOLINT(bugprone-use-after-move)

  sockact::libuv_stream stream;
  ASSERT_TRUE(sockact::adopt(&loop_, &stream, std::move(l), ec)) << ec.message();
  uv_stream_t* s = &stream.stream;
  EXPECT_EQ(l.fd.get(), -1) << "on success the handle owns the fd";  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(l.name, "127.0.0.1:0") << "name and info stay";
  serve_one_client(s, n);
}

TEST_F(Libuv, UnixListenerFromListenOrBind) {
  temp_dir dir;
  const std::string path = dir.file("bound.sock");
  sockact::server_socket l = bind_one(path);
  const int n = l.fd.get();
  uv_pipe_t pipe;
  std::error_code ec;
  ASSERT_TRUE(sockact::adopt(&loop_, &pipe, std::move(l), ec)) << ec.message();
  EXPECT_FALSE(l.fd);  // NOLINT(bugprone-use-after-move)
  serve_one_client(reinterpret_cast<uv_stream_t*>(&pipe), n);
}

TEST_F(Libuv, FdIsClosedExactlyOnce) {
  int n = -1;
  {
    sockact::server_socket l = bind_one("127.0.0.1:0");
    n = l.fd.get();
    uv_tcp_t tcp;
    std::error_code ec;
    ASSERT_TRUE(sockact::adopt(&loop_, &tcp, std::move(l), ec)) << ec.message();
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_FALSE(is_open(n)) << "uv_close closed it (once)";
    // Put something else at that number: a second close, by the listener's
    // destructor or by the loop, would close this.
    const int sentinel = check(::open("/dev/null", O_RDONLY | O_CLOEXEC), "open");
    if (sentinel != n) {  // open() may well have picked n itself, the lowest free number
      check(::dup2(sentinel, n), "dup2");
      ::close(sentinel);
    }
  }  // the listener is destroyed here
  EXPECT_EQ(uv_loop_close(&loop_), 0);
  ASSERT_EQ(uv_loop_init(&loop_), 0);  // for TearDown
  struct stat st {};
  ASSERT_EQ(::fstat(n, &st), 0) << "fd " << n << " was closed a second time";
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  ::close(n);
}

TEST_F(Libuv, CloseDoesNotShutDownTheManagersCopy) {
  test_fd managers_copy = inet_socket(AF_INET, SOCK_STREAM);  // what systemd keeps
  const int ours = check(::fcntl(managers_copy.get(), F_DUPFD_CLOEXEC, 0), "dup");
  uv_tcp_t tcp;
  std::error_code ec;
  ASSERT_TRUE(sockact::adopt(&loop_, &tcp, test_fd(ours), ec)) << ec.message();
  EXPECT_TRUE(is_nonblocking(managers_copy.get())) << "O_NONBLOCK is shared with the manager's copy";
  ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(&tcp), SOMAXCONN, [](uv_stream_t*, int) {}), 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_FALSE(is_open(ours));
  EXPECT_TRUE(is_listening(managers_copy.get())) << "the socket must still listen for the next instance";
  test_fd client = connect_to(local_address_of(managers_copy.get()));  // queued for the next instance
  pollfd p{managers_copy.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
}

TEST_F(Libuv, SecondTranslationUnitLinks) {
  EXPECT_EQ(sockact_libuv_second_tu(&loop_), EBADF);
}

}  // namespace
