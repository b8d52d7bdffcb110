// sockact-inspect: what did the service manager pass to this process?
//
// Start it the way your server is started (a .socket unit, systemd-socket-activate,
// podman) and it prints one line per received fd, or why none were taken.
//
//   systemd-socket-activate -l 127.0.0.1:8080 sockact-inspect --respond
//   curl http://127.0.0.1:8080/          # the report comes back as the response
//
// Options:
//   --respond        answer one request on a received socket with the report
//                    (HTTP when the request looks like HTTP, else plain text;
//                    datagram sockets reply to the sender), then exit
//   --timeout=SEC    how long --respond waits for a request (default 30)
//   --allow-parent   accept fds whose LISTEN_PID is our parent (init wrappers)
//   --allow-any      accept fds whatever LISTEN_PID says
// Exit status: 0 when fds were taken, 1 when not activated or refused, 2 on usage errors.
//
// SPDX-License-Identifier: MIT

#include <sockact/sockact.hpp>

#include <sockact/detail/text.hpp>  // quote()

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::string env_line(const char* name) {
  const char* v = std::getenv(name);
  return std::string(name) + "=" + (v != nullptr ? sockact::detail::quote(v) : std::string("(unset)"));
}

std::string report(const sockact::listen_options& options) {
  std::string out = "sockact-inspect " SOCKACT_VERSION_STRING ": pid " + std::to_string(::getpid()) +
                    ", parent " + std::to_string(::getppid()) + "\n";
  for (const char* name : {"LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES"})
    out += "  " + env_line(name) + "\n";
  out += sockact::diagnose(options).to_string();
  return out;
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads what the client sent, up to the end of an HTTP header or a short pause.
std::string read_request(int fd) {
  std::string req;
  char buf[2048];
  while (req.size() < 16384 && req.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, req.empty() ? 5000 : 200) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    req.append(buf, static_cast<std::size_t>(n));
  }
  return req;
}

void answer_stream(int conn, const std::string& body) {
  const std::string req = read_request(conn);
  const bool http = req.rfind("GET ", 0) == 0 || req.rfind("HEAD ", 0) == 0 || req.rfind("POST ", 0) == 0;
  std::string out;
  if (http)
    out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  out += body;
  write_all(conn, out);
}

// Answers one request on any of the received sockets. The inherited sockets
// are never shut down or closed here: systemd keeps its own copies.
int respond(const std::vector<sockact::passed_fd>& fds, const std::string& body, int timeout_s) {
  std::vector<pollfd> polls;
  std::vector<sockact::fd_info> infos;
  for (const sockact::passed_fd& l : fds) {
    std::error_code ec;
    sockact::fd_info info = sockact::describe_fd(l.fd, ec);
    if (ec || !info.is_socket()) continue;
    polls.push_back({l.fd, POLLIN, 0});
    infos.push_back(info);
  }
  if (polls.empty()) {
    std::fprintf(stderr, "sockact-inspect: --respond: no socket to answer on\n");
    return 1;
  }
  const int ready = ::poll(polls.data(), polls.size(), timeout_s * 1000);
  if (ready <= 0) {
    std::fprintf(stderr, "sockact-inspect: --respond: no request within %d s\n", timeout_s);
    return 1;
  }
  for (std::size_t i = 0; i < polls.size(); ++i) {
    if ((polls[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const sockact::fd_info& info = infos[i];
    if (info.listening) {
      const int conn = ::accept4(info.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) {
        std::perror("sockact-inspect: accept");
        return 1;
      }
      answer_stream(conn, body);
      ::close(conn);  // ours: accepted here
    } else if (info.type == SOCK_DGRAM) {
      char buf[2048];
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      const ssize_t n = ::recvfrom(info.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 0) {
        std::perror("sockact-inspect: recvfrom");
        return 1;
      }
      if (len > 0) ::sendto(info.fd, body.data(), body.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
    } else {
      answer_stream(info.fd, body);  // Accept=yes: fd 3 is the connection itself
    }
    return 0;
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  sockact::listen_options options;
  bool do_respond = false;
  int timeout_s = 30;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--respond") {
      do_respond = true;
    } else if (a.rfind("--timeout=", 0) == 0) {
      timeout_s = std::atoi(a.c_str() + 10);
      if (timeout_s <= 0) {
        std::fprintf(stderr, "sockact-inspect: bad %s\n", a.c_str());
        return 2;
      }
    } else if (a == "--allow-parent") {
      options.pid_check = sockact::listen_pid_check::allow_parent;
    } else if (a == "--allow-any") {
      options.pid_check = sockact::listen_pid_check::allow_any;
    } else {
      std::fprintf(stderr,
                   "usage: sockact-inspect [--respond] [--timeout=SEC] [--allow-parent|--allow-any]\n");
      return 2;
    }
  }

  // Diagnose first: listen_fds() sets FD_CLOEXEC, which the report should show as passed.
  const std::string text = report(options);
  std::error_code ec;
  const std::vector<sockact::passed_fd> fds = sockact::listen_fds(options, ec);
  std::string body = text;
  if (ec)
    body += "listen_fds: error: " + ec.message() + "\n";
  else
    body += "listen_fds: " + std::to_string(fds.size()) + " fd(s) taken\n";
  std::fputs(body.c_str(), stdout);
  std::fflush(stdout);

  if (fds.empty()) return 1;
  if (do_respond) return respond(fds, body, timeout_s);
  return 0;
}
