// SPDX-License-Identifier: MIT
// libFuzzer target: detail::send_notify() with fuzzed state bytes, to an
// abstract datagram socket of this process (never a real manager's). What
// arrives must be the state up to its first NUL; no fds are passed.
#include <sockact/notify.hpp>  // first: the header must be self-contained

#include "fuzz_support.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using sockact_fuzz::show;

namespace {

int receiver = -1;
std::string address;  // "@sockact-fuzz-notify-<pid>"
std::vector<char> buffer(1 << 20);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  receiver = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (receiver < 0) sockact_fuzz::fail("socket");
  address = "@sockact-fuzz-notify-" + std::to_string(::getpid());
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path + 1, address.data() + 1, address.size() - 1);
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  if (::bind(receiver, reinterpret_cast<sockaddr*>(&un), len) < 0) sockact_fuzz::fail("bind", address);
  const int big = 4 * 1024 * 1024;
  ::setsockopt(receiver, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  int pass = 1;
  ::setsockopt(receiver, SOL_SOCKET, SO_PASSCRED, &pass, sizeof pass);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view state(reinterpret_cast<const char*>(data), size);
  const std::string sent(state.substr(0, state.find('\0')));
  const std::string context = "state: " + show(state);
  ::setenv("NOTIFY_SOCKET", address.c_str(), 1);
  const int fds_before = sockact_fuzz::open_fd_count();

  const int r = sockact::detail::send_notify(0, state, nullptr, 0);
  SOCKACT_FUZZ_CHECK(r == 1, context + "\nr=" + std::to_string(r));

  // One datagram, exactly the bytes before the first NUL, with no fds.
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(receiver, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  SOCKACT_FUZZ_CHECK(n >= 0, context + "\nrecvmsg: " + std::strerror(errno));
  SOCKACT_FUZZ_CHECK((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0, context);
  SOCKACT_FUZZ_CHECK(
      std::string_view(buffer.data(), static_cast<std::size_t>(n)) == sent,
      context + "\nreceived: " + show(std::string_view(buffer.data(), static_cast<std::size_t>(n))));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    SOCKACT_FUZZ_CHECK(!(c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS), context);
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      SOCKACT_FUZZ_CHECK(cred.pid == ::getpid(), context);
    }
  }
  // Nothing else queued.
  char extra = 0;
  SOCKACT_FUZZ_CHECK(::recv(receiver, &extra, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, context);

  // The public form says the same, and keeps the variable unless asked.
  std::error_code ec;
  SOCKACT_FUZZ_CHECK(sockact::notify(state, ec) && !ec, context + "\nec: " + ec.message());
  SOCKACT_FUZZ_CHECK(
      ::recv(receiver, buffer.data(), buffer.size(), MSG_DONTWAIT) == static_cast<ssize_t>(sent.size()),
      context);
  sockact::notify_options unset;
  unset.unset_environment = true;
  SOCKACT_FUZZ_CHECK(sockact::notify(state, nullptr, 0, unset, ec) && !ec, context);
  SOCKACT_FUZZ_CHECK(std::getenv("NOTIFY_SOCKET") == nullptr, context);
  SOCKACT_FUZZ_CHECK(
      ::recv(receiver, buffer.data(), buffer.size(), MSG_DONTWAIT) == static_cast<ssize_t>(sent.size()),
      context);
  // Unset: nothing sent, no error.
  SOCKACT_FUZZ_CHECK(!sockact::notify(state, ec) && !ec, context);

  const int fds_after = sockact_fuzz::open_fd_count();
  SOCKACT_FUZZ_CHECK(fds_after == fds_before, context);
  return 0;
}
