// SPDX-License-Identifier: MIT
// libFuzzer target: NOTIFY_SOCKET values, detail::parse_notify_address().
// The input up to its first NUL is the value (an environment string cannot
// hold more). Nothing is sent: the send path has its own target.
#include <sockact/notify.hpp>  // first: the header must be self-contained

#include "fuzz_support.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#if SOCKACT_DETAIL_HAVE_VSOCK
#include <linux/vm_sockets.h>
#endif

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

using sockact_fuzz::show;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string value(reinterpret_cast<const char*>(data),
                          strnlen(reinterpret_cast<const char*>(data), size));
  const std::string context = "NOTIFY_SOCKET=" + show(value);
  sockact::detail::notify_address a;
  a.size = 12345;
  const int r = sockact::detail::parse_notify_address(value.c_str(), a);
  SOCKACT_FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENAMETOOLONG || r == -ERANGE || r == -EAFNOSUPPORT,
                     context + "\nr=" + std::to_string(r));
  if (r < 0) return 0;

  const int family = reinterpret_cast<const sockaddr&>(a.storage).sa_family;
  SOCKACT_FUZZ_CHECK(a.size > 0 && a.size <= sizeof a.storage, context);
  if (value[0] == '/' || value[0] == '@') {
    const auto& un = reinterpret_cast<const sockaddr_un&>(a.storage);
    SOCKACT_FUZZ_CHECK(family == AF_UNIX && a.type == 0, context);
    SOCKACT_FUZZ_CHECK(value.size() >= 2 && value.size() <= sizeof un.sun_path - 1, context);
    if (value[0] == '/') {
      SOCKACT_FUZZ_CHECK(a.size == offsetof(sockaddr_un, sun_path) + value.size() + 1, context);
      SOCKACT_FUZZ_CHECK(std::string(un.sun_path) == value, context);
    } else {
      SOCKACT_FUZZ_CHECK(a.size == offsetof(sockaddr_un, sun_path) + value.size(), context);
      SOCKACT_FUZZ_CHECK(
          un.sun_path[0] == '\0' && std::memcmp(un.sun_path + 1, value.data() + 1, value.size() - 1) == 0,
          context);
    }
    return 0;
  }
#if SOCKACT_DETAIL_HAVE_VSOCK
  const auto& vm = reinterpret_cast<const sockaddr_vm&>(a.storage);
  SOCKACT_FUZZ_CHECK(family == AF_VSOCK && a.size == sizeof(sockaddr_vm), context);
  SOCKACT_FUZZ_CHECK(value.rfind("vsock", 0) == 0, context);
  SOCKACT_FUZZ_CHECK(vm.svm_cid != VMADDR_CID_ANY && vm.svm_port != VMADDR_PORT_ANY, context);
  // The type follows the prefix.
  const std::size_t colon = value.find(':');
  const std::string prefix = value.substr(0, colon);
  const int type = prefix == "vsock-stream"      ? SOCK_STREAM
                   : prefix == "vsock-dgram"     ? SOCK_DGRAM
                   : prefix == "vsock-seqpacket" ? SOCK_SEQPACKET
                                                 : 0;
  SOCKACT_FUZZ_CHECK(prefix == "vsock" || type != 0, context);
  SOCKACT_FUZZ_CHECK(a.type == type, context);
  // CID and port read back the same through the shared number parser.
  const std::size_t second = value.find(':', colon + 1);
  SOCKACT_FUZZ_CHECK(second != std::string::npos, context);
  unsigned port = 0;
  SOCKACT_FUZZ_CHECK(
      sockact::detail::parse_uint(value.c_str() + second + 1, port) == 0 && port == vm.svm_port, context);
  unsigned cid = 0;
  SOCKACT_FUZZ_CHECK(
      sockact::detail::parse_vsock_cid(value.substr(colon + 1, second - colon - 1), cid) == 0 &&
          cid == vm.svm_cid,
      context);
#endif
  return 0;
}
