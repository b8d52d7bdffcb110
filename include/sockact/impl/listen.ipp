// SPDX-License-Identifier: MIT
// The definitions of <sockact/listen.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_LISTEN_IPP
#define SOCKACT_IMPL_LISTEN_IPP

#include <sockact/listen.hpp>

#include <sockact/detail/parse.hpp>
#include <sockact/detail/posix.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>
#include <sockact/impl/diagnose.ipp>  // diagnose(), detail::examine()
#include <sockact/posix.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace sockact {

namespace detail {

SOCKACT_DECL bool set_error(std::error_code& ec, std::string* why, std::error_code code, std::string text) {
  ec = code;
  if (why != nullptr) *why = std::move(text);
  return false;
}

// How errors name an endpoint: the entry as written, and the variables it came from.
SOCKACT_DECL std::string where(const endpoint& e) {
  return e.origin.empty() ? quote(e.text) : quote(e.text) + " (from " + e.origin + ")";
}

SOCKACT_DECL bool parse_port(std::string_view s, std::uint16_t& port) noexcept {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

SOCKACT_DECL bool parse_endpoint(std::string_view s, endpoint& e, std::string& problem) {
  e = endpoint{};
  e.text = std::string(s);
  if (s.empty()) {
    problem = "is empty";
    return false;
  }
  // inet_pton() and the kernel stop at a NUL: "[::\0junk]:80" would be "::".
  if (s.find('\0') != std::string_view::npos) {
    problem = "contains a NUL byte";
    return false;
  }
  if (s == "sd-listen" || s == "sd-listen:*") {
    e.type = endpoint::kind::activated;
    return true;
  }
  if (s.rfind("sd-listen:", 0) == 0) {
    e.type = endpoint::kind::activated;
    e.name = std::string(s.substr(10));
    return true;
  }
  if (s[0] == '/' || s.rfind("./", 0) == 0 || s.rfind("../", 0) == 0) {
    e.type = endpoint::kind::unix_path;
    e.path = std::string(s);
    if (e.path.size() > max_unix_path) {
      problem = "unix socket path is " + std::to_string(e.path.size()) + " bytes, the limit is " +
                std::to_string(max_unix_path);
      return false;
    }
    return true;
  }
  if (s[0] == '@') {
    e.type = endpoint::kind::unix_abstract;
    e.path = std::string(s.substr(1));
    if (e.path.empty() || e.path.size() > max_unix_path) {
      problem = "abstract socket name must be 1.." + std::to_string(max_unix_path) + " bytes";
      return false;
    }
    return true;
  }
  std::string_view host, port;
  if (s[0] == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      problem = "expected [IPv6]:PORT";
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    e.family = AF_INET6;
  } else if (const std::size_t colon = s.rfind(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      problem = "an IPv6 address needs brackets: [ADDRESS]:PORT";
      return false;
    }
  } else {
    host = "0.0.0.0";
    port = s;
  }
  if (!parse_port(port, e.port)) {
    problem = "port " + quote(port) + " is not a number from 0 to 65535";
    return false;
  }
  unsigned char buf[sizeof(in6_addr)];
  const std::string h(host);
  if (::inet_pton(e.family, h.c_str(), buf) != 1) {
    problem = quote(host) + (e.family == AF_INET6 ? " is not an IPv6 address" : " is not an IPv4 address");
    return false;
  }
  e.host = h;
  return true;
}

}  // namespace detail

SOCKACT_DECL std::vector<endpoint> parse_endpoints(std::string_view list, std::error_code& ec,
                                                   std::string* why) {
  std::vector<endpoint> out;
  ec.clear();
  std::size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && detail::is_list_separator(list[i])) ++i;
    std::size_t j = i;
    while (j < list.size() && !detail::is_list_separator(list[j])) ++j;
    if (j == i) break;
    endpoint e;
    std::string problem;
    if (!detail::parse_endpoint(list.substr(i, j - i), e, problem)) {
      detail::set_error(ec, why, errc::bad_address,
                        "bad address " + detail::quote(list.substr(i, j - i)) + ": " + problem);
      return {};
    }
    out.push_back(std::move(e));
    i = j;
  }
  return out;
}

namespace detail {

SOCKACT_DECL std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string(fallback);
}

SOCKACT_DECL bool address_from_environment(std::vector<endpoint>& out, std::error_code& ec,
                                           std::string* why) {
  endpoint e;
  std::string problem;
  if (const char* path = std::getenv("SOCKET_PATH"); path != nullptr && *path != '\0') {
    const std::string p = path;
    const std::string spec = p[0] == '/' || p[0] == '@' || p.rfind("./", 0) == 0 ? p : "./" + p;
    if (!parse_endpoint(spec, e, problem) || e.type == endpoint::kind::activated)
      return set_error(ec, why, errc::bad_address,
                       "SOCKET_PATH=" + quote(p) + ": " + (problem.empty() ? "not a socket path" : problem));
    e.origin = "SOCKET_PATH=" + quote(p);
    out.push_back(std::move(e));
    return true;
  }
  const std::string host = env_or("HOST", "0.0.0.0");
  const std::string port = env_or("PORT", "3000");
  std::uint16_t n = 0;
  if (!parse_port(port, n))
    return set_error(ec, why, errc::bad_address, "PORT=" + quote(port) + " is not a number from 0 to 65535");
  const std::string spec = host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port;
  // Only an address: HOST="/x" or "@x" or "sd-listen" must not turn into a socket file.
  if (!parse_endpoint(spec, e, problem) || e.type != endpoint::kind::inet)
    return set_error(ec, why, errc::bad_address, "HOST=" + quote(host) + " is not an IP address");
  e.origin = "HOST=" + quote(host) + " PORT=" + quote(port);
  out.push_back(std::move(e));
  return true;
}

SOCKACT_DECL socklen_t unix_address(const endpoint& e, sockaddr_un& sa) noexcept {
  sa = sockaddr_un{};
  sa.sun_family = AF_UNIX;
  if (e.type == endpoint::kind::unix_abstract) {
    std::memcpy(sa.sun_path + 1, e.path.data(), e.path.size());
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + e.path.size());
  }
  std::memcpy(sa.sun_path, e.path.c_str(), e.path.size() + 1);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + e.path.size() + 1);
}

SOCKACT_DECL socklen_t endpoint_address(const endpoint& e, sockaddr_storage& ss) noexcept {
  ss = sockaddr_storage{};
  if (e.type == endpoint::kind::unix_path || e.type == endpoint::kind::unix_abstract)
    return unix_address(e, reinterpret_cast<sockaddr_un&>(ss));
  if (e.type != endpoint::kind::inet) return 0;
  if (e.family == AF_INET6) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(e.port);
    ::inet_pton(AF_INET6, e.host.c_str(), &in6.sin6_addr);
    return sizeof in6;
  }
  auto& in = reinterpret_cast<sockaddr_in&>(ss);
  in.sin_family = AF_INET;
  in.sin_port = htons(e.port);
  ::inet_pton(AF_INET, e.host.c_str(), &in.sin_addr);
  return sizeof in;
}

/// Is anybody serving on this unix socket file? Only a refused connection
/// proves a stale file; anything else (accepted, queue full) means alive.
SOCKACT_DECL bool unix_socket_alive(const sockaddr_un& sa, socklen_t len, int type) noexcept {
  const int probe = ::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return true;
  const bool refused =
      ::connect(probe, reinterpret_cast<const sockaddr*>(&sa), len) < 0 && errno == ECONNREFUSED;
  close_own(probe);
  return !refused;
}

SOCKACT_DECL bool bind_one(const endpoint& e, const listen_config& cfg, server_socket& out,
                           std::error_code& ec, std::string* why) {
  const int family = e.type == endpoint::kind::inet ? e.family : AF_UNIX;
  const int flags = SOCK_CLOEXEC | (cfg.nonblocking ? SOCK_NONBLOCK : 0);
  unique_fd fd(::socket(family, cfg.type | flags, 0));
  const auto fail = [&](const char* what) {
    const std::error_code code(errno, std::generic_category());
    return set_error(ec, why, code, std::string(what) + " " + detail::where(e) + ": " + code.message());
  };
  if (!fd) return fail("socket for");

  sockaddr_storage ss{};
  const socklen_t len = endpoint_address(e, ss);
  if (family != AF_UNIX) {
    const int one = 1;
    if (cfg.type == SOCK_STREAM) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (cfg.reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
      return fail("SO_REUSEPORT on");
  }

  const auto* sa = reinterpret_cast<const sockaddr*>(&ss);
  if (::bind(fd.get(), sa, len) < 0) {
    const int err = errno;
    const auto& un = reinterpret_cast<const sockaddr_un&>(ss);
    struct stat st {};
    const bool retry = err == EADDRINUSE && e.type == endpoint::kind::unix_path && cfg.remove_stale_unix &&
                       ::lstat(e.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
                       !unix_socket_alive(un, len, cfg.type) && ::unlink(e.path.c_str()) == 0;
    errno = err;
    if (!retry) {
      if (err == EADDRINUSE && e.type == endpoint::kind::unix_path) {
        const std::error_code code(err, std::generic_category());
        return set_error(ec, why, code,
                         "bind " + detail::where(e) + ": " + code.message() +
                             (::lstat(e.path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)
                                  ? " (the file exists and is not a socket; not removed)"
                                  : " (another process is listening on it)"));
      }
      return fail("bind");
    }
    if (::bind(fd.get(), sa, len) < 0) return fail("bind");
  }
  if (cfg.unix_mode && e.type == endpoint::kind::unix_path && ::chmod(e.path.c_str(), *cfg.unix_mode) < 0)
    return fail("chmod");
  if ((cfg.type == SOCK_STREAM || cfg.type == SOCK_SEQPACKET) && ::listen(fd.get(), cfg.backlog) < 0)
    return fail("listen on");

  out.name = e.text;
  out.activated = false;
  out.info = describe_fd(fd.get(), ec);
  out.fd = std::move(fd);
  ec.clear();
  return true;
}

}  // namespace detail

SOCKACT_DECL std::vector<server_socket> listen_or_bind(const listen_config& config, std::error_code& ec,
                                                       std::string* why) {
  std::vector<server_socket> out;
  std::vector<endpoint> endpoints;
  if (!config.address.empty()) {
    endpoints = parse_endpoints(config.address, ec, why);
    if (ec) return {};
  }

  const activation_environment env = activation_environment::current();
  const detail::listen_variables vars = detail::listen_variables::of(env);
  const detail::examination x = detail::examine(vars, config.activation.pid_check,
                                                detail::listen_call::with_names, detail::fd_access::look);
  const activation_status status = x.status;
  if (status != activation_status::not_activated && status != activation_status::activated) {
    const diagnosis d = diagnose(env, config.activation);
    detail::set_error(ec, why, errc::activation_unusable,
                      d.summary + (d.hint.empty() ? "" : "\nhint: " + d.hint) +
                          "\nrefusing to bind a socket of our own while LISTEN_* variables are set");
    return {};
  }

  if (status == activation_status::activated) {
    std::vector<passed_fd> fds = listen_fds(config.activation, ec);
    if (ec) {  // changed since diagnose(); say what listen_fds saw
      detail::set_error(ec, why, ec, "listen_fds: " + ec.message());
      return {};
    }
    std::vector<std::string> wanted;
    bool all = true;
    for (const endpoint& e : endpoints) {
      if (e.type != endpoint::kind::activated) continue;
      if (e.name.empty()) {
        wanted.clear();
        all = true;
        break;
      }
      all = false;
      wanted.push_back(e.name);
    }
    for (const std::string& name : wanted) {
      if (find_fd(fds, name) == nullptr) {
        std::string names;
        for (const passed_fd& l : fds) names += (names.empty() ? "" : ", ") + detail::quote(l.name);
        detail::set_error(ec, why, errc::name_not_found,
                          "sd-listen:" + name + ": no passed fd has that name (passed: " + names + ")");
        return {};
      }
    }
    for (passed_fd& l : fds) {
      bool take = all;
      for (const std::string& name : wanted) take = take || l.name == name;
      if (!take) continue;
      server_socket s;
      s.fd.reset(l.fd);
      s.name = std::move(l.name);
      s.activated = true;
      std::error_code dec;
      s.info = describe_fd(l.fd, dec);
      if (!s.info.is_socket()) {
        s.fd.release();  // not taken: leave the fd as it was
        // Taking every passed fd, one that is no socket is most often one the
        // program stored itself (FDSTORE=1), passed back after the sockets.
        detail::set_error(ec, why, errc::not_a_socket,
                          "fd " + std::to_string(l.fd) + " (" + detail::quote(s.name) + ") is a " +
                              kind_name(s.info.kind) + ", not a socket" +
                              (all ? "; if it is an fd of the fd store (FDSTORE=1: FileDescriptorStoreMax=, "
                                     "sockact-run --fd-store-max), name the listening sockets "
                                     "(FileDescriptorName=, sockact-run --fdname) and take only those, with "
                                     "the address sd-listen:NAME"
                                   : ""));
        for (server_socket& taken : out) taken.fd.release();
        return {};
      }
      if (config.nonblocking && !s.info.nonblocking) {
        if (!set_nonblocking(l.fd, true, ec)) {
          s.fd.release();
          for (server_socket& taken : out) taken.fd.release();
          detail::set_error(ec, why, ec, "O_NONBLOCK on fd " + std::to_string(l.fd) + ": " + ec.message());
          return {};
        }
        s.info.nonblocking = true;
      }
      out.push_back(std::move(s));
    }
    ec.clear();
    return out;
  }

  // Not activated: bind.
  std::vector<endpoint> concrete;
  bool wants_activation = false;
  for (const endpoint& e : endpoints) {
    if (e.type == endpoint::kind::activated)
      wants_activation = true;
    else
      concrete.push_back(e);
  }
  if (concrete.empty()) {
    if (wants_activation) {
      detail::set_error(ec, why, errc::not_activated,
                        "address " + detail::quote(config.address) +
                            " asks for socket-activated fds, but: " + detail::describe(x, vars));
      return {};
    }
    if (!detail::address_from_environment(concrete, ec, why)) return {};
  }
  for (const endpoint& e : concrete) {
    server_socket s;
    if (!detail::bind_one(e, config, s, ec, why)) return {};  // already bound ones close here
    out.push_back(std::move(s));
  }
  return out;
}

#if SOCKACT_HAS_EXCEPTIONS
SOCKACT_DECL std::vector<server_socket> listen_or_bind(const listen_config& config) {
  std::error_code ec;
  std::string why;
  std::vector<server_socket> out = listen_or_bind(config, ec, &why);
  if (ec) detail::throw_error(ec, "sockact::listen_or_bind: " + why);
  return out;
}

SOCKACT_DECL std::vector<endpoint> parse_endpoints(std::string_view list) {
  std::error_code ec;
  std::string why;
  std::vector<endpoint> out = parse_endpoints(list, ec, &why);
  if (ec) detail::throw_error(ec, "sockact::parse_endpoints: " + why);
  return out;
}
#endif

}  // namespace sockact

#endif  // SOCKACT_IMPL_LISTEN_IPP
