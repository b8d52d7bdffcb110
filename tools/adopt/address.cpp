// SPDX-License-Identifier: MIT
// libsockact-adopt.so: addresses as a program binds them, as a passed socket
// is bound, and as SOCKACT_ADOPT writes them, in one comparable form.
// SOCKACT_ADOPT is written in the library's address grammar (parse_endpoint).

#include "adopt.hpp"

#include <sockact/detail/text.hpp>
#include <sockact/listen.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <algorithm>
#include <cstring>

namespace sockact_adopt {

line& line::addr(const sockaddr* sa, socklen_t len) {
  char text[INET6_ADDRSTRLEN];
  if (sa == nullptr || len < sizeof(sa_family_t)) return add("(none)");
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return add(text).add(":").num(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return add("[").add(text).add("]:").num(ntohs(in6->sin6_port));
  }
  if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const std::size_t off = offsetof(sockaddr_un, sun_path);
    if (len <= off) return add("(unnamed unix socket)");
    std::size_t plen = len - off;
    if (un->sun_path[0] == '\0') return add("@").add(un->sun_path + 1, plen - 1);
    return add(un->sun_path, ::strnlen(un->sun_path, plen));
  }
  return add("(family ").num(sa->sa_family).add(")");
}

bool address::any_ip() const {
  static const unsigned char zero[16] = {};
  return is_inet() && std::memcmp(ip, zero, sizeof ip) == 0;
}

namespace {
void set_v4(address& a, const in_addr& v4) {
  std::memset(a.ip, 0, sizeof a.ip);
  if (v4.s_addr == htonl(INADDR_ANY)) return;
  a.ip[10] = 0xff;
  a.ip[11] = 0xff;
  std::memcpy(a.ip + 12, &v4, 4);
}
}  // namespace

bool from_sockaddr(const sockaddr* sa, socklen_t len, address& out) {
  out = address{};
  if (sa == nullptr || len < sizeof(sa_family_t)) return false;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    out.family = AF_INET;
    set_v4(out, in->sin_addr);
    out.port = ntohs(in->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    out.family = AF_INET6;
    std::memcpy(out.ip, &in6->sin6_addr, 16);
    static const unsigned char any_v4_mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
    if (std::memcmp(out.ip, any_v4_mapped, 16) == 0) std::memset(out.ip, 0, 16);
    out.port = ntohs(in6->sin6_port);
    return true;
  }
  if (sa->sa_family == AF_UNIX) {
    const std::size_t off = offsetof(sockaddr_un, sun_path);
    if (len <= off) return false;  // unnamed: nothing to match
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    std::size_t plen = std::min<std::size_t>(len - off, sizeof out.path);
    if (un->sun_path[0] != '\0') plen = ::strnlen(un->sun_path, plen);  // a path ends at its NUL
    if (plen == 0) return false;
    out.family = AF_UNIX;
    std::memcpy(out.path, un->sun_path, plen);
    out.path_len = plen;
    return true;
  }
  return false;
}

bool same_address(const address& a, const address& b) {
  if (a.is_inet() && b.is_inet()) return a.port == b.port && std::memcmp(a.ip, b.ip, 16) == 0;
  if (a.is_unix() && b.is_unix())
    return a.path_len == b.path_len && std::memcmp(a.path, b.path, a.path_len) == 0;
  return false;
}

bool parse_address(const std::string& s, address& out, std::string& problem) {
  out = address{};
  // *:PORT, any host: ours, not the library's, which binds no such address.
  if (s.rfind("*:", 0) == 0) {
    if (!sockact::detail::parse_port(std::string_view(s).substr(2), out.port)) {
      problem = "port " + sockact::detail::quote(s.substr(2)) + " is not a number from 0 to 65535";
      return false;
    }
    out.family = AF_INET6;
    out.any_host = true;
  } else {
    sockact::endpoint e;
    if (!sockact::detail::parse_endpoint(s, e, problem)) return false;
    if (e.type == sockact::endpoint::kind::activated) {
      problem = "names passed sockets, not an address a program binds";
      return false;
    }
    sockaddr_storage ss{};
    const socklen_t len = sockact::detail::endpoint_address(e, ss);
    if (!from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len, out)) {
      problem = "is not an address a program binds";
      return false;
    }
  }
  if (out.is_inet() && out.port == 0) {
    problem = "port 0 asks for any free port, as clients do: give the port the program binds";
    return false;
  }
  return true;
}

}  // namespace sockact_adopt
