// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ERROR_HPP
#define SOCKACT_ERROR_HPP

#include <sockact/detail/config.hpp>

#include <string>
#include <system_error>
#include <type_traits>

namespace sockact {

/// Errors of sockact's own; everything the kernel or libsystemd reports is
/// an errno value in std::generic_category() instead.
enum class errc {
  name_not_found = 1,   ///< no received fd carries the requested name
  not_a_socket,         ///< the fd is open but is not a socket
  wrong_family,         ///< the socket's address family is not the one asked for
  wrong_type,           ///< the socket's type (stream, datagram, ...) is not the one asked for
  not_listening,        ///< a listening socket was asked for; this one is connected or unbound
  not_connected,        ///< a connection socket was asked for; this one is listening
  foreign_listen_pid,   ///< LISTEN_FDS is set but LISTEN_PID names another process
  bad_address,          ///< an address (or HOST/PORT/SOCKET_PATH) could not be parsed
  activation_unusable,  ///< LISTEN_* variables are present but cannot be used (see the message)
  not_activated,        ///< sd-listen was asked for, but the process was not socket-activated
};

/// The category of sockact::errc.
SOCKACT_DECL const std::error_category& error_category() noexcept;

SOCKACT_DECL std::error_code make_error_code(errc e) noexcept;

}  // namespace sockact

template <>
struct std::is_error_code_enum<sockact::errc> : std::true_type {};

#if SOCKACT_HAS_EXCEPTIONS
namespace sockact::detail {
[[noreturn]] SOCKACT_DECL void throw_error(const std::error_code& ec, const char* what);
[[noreturn]] SOCKACT_DECL void throw_error(const std::error_code& ec, const std::string& what);
}  // namespace sockact::detail
#endif

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/error.ipp>
#endif

#endif  // SOCKACT_ERROR_HPP
