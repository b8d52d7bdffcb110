// SPDX-License-Identifier: MIT
// The definitions of <sockact/error.hpp>'s functions: included by that header
// when sockact is header-only, and by <sockact/impl/src.hpp> in the one
// translation unit that compiles them with SOCKACT_SEPARATE_COMPILATION.
#ifndef SOCKACT_IMPL_ERROR_IPP
#define SOCKACT_IMPL_ERROR_IPP

#include <sockact/error.hpp>

#include <string>
#include <system_error>

namespace sockact {

namespace detail {
class error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sockact"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::name_not_found:
        return "no socket-activation fd has that name";
      case errc::not_a_socket:
        return "fd is not a socket";
      case errc::wrong_family:
        return "socket has another address family";
      case errc::wrong_type:
        return "socket has another type";
      case errc::not_listening:
        return "socket is not listening";
      case errc::not_connected:
        return "socket is not a connection";
      case errc::foreign_listen_pid:
        return "LISTEN_PID names another process";
      case errc::bad_address:
        return "bad listen address";
      case errc::activation_unusable:
        return "socket-activation variables are present but unusable";
      case errc::not_activated:
        return "not socket-activated";
    }
    return "unknown sockact error";
  }
};
}  // namespace detail

SOCKACT_DECL const std::error_category& error_category() noexcept {
  static const detail::error_category instance;
  return instance;
}

SOCKACT_DECL std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace sockact

#if SOCKACT_HAS_EXCEPTIONS
namespace sockact::detail {
[[noreturn]] SOCKACT_DECL void throw_error(const std::error_code& ec, const char* what) {
  throw std::system_error(ec, what);
}
[[noreturn]] SOCKACT_DECL void throw_error(const std::error_code& ec, const std::string& what) {
  throw std::system_error(ec, what);
}
}  // namespace sockact::detail
#endif

#endif  // SOCKACT_IMPL_ERROR_IPP
