// SPDX-License-Identifier: MIT
#ifndef SOCKACT_LISTEN_HPP
#define SOCKACT_LISTEN_HPP

// "Listen where the service manager told me, else where I am configured":
// the address grammar and listen_or_bind().

#include <sockact/detail/config.hpp>
#include <sockact/error.hpp>
#include <sockact/listen_fds.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sockact {

/// One entry of an address list.
struct endpoint {
  enum class kind {
    inet,           ///< "127.0.0.1:8080", "[::1]:8080", "8080" (= 0.0.0.0:8080)
    unix_path,      ///< "/run/app.sock", "./app.sock"
    unix_abstract,  ///< "@app" (Linux abstract namespace)
    activated,      ///< "sd-listen" / "sd-listen:*" (every passed fd) or "sd-listen:NAME"
  };
  kind type = kind::inet;
  std::string text;      ///< the entry as written
  int family = AF_INET;  ///< inet: AF_INET or AF_INET6
  std::string host;      ///< inet: numeric address
  std::uint16_t port = 0;
  std::string path;  ///< unix_path: the path; unix_abstract: the name without '@'
  std::string name;  ///< activated: the FileDescriptorName= wanted; empty = all
  /// Where the entry came from when not from an address list, such as
  /// `HOST="::1" PORT="3000"`: errors quote this, so they name the variable.
  std::string origin;
};

namespace detail {

// Digits only, 0..65535: no sign, no spaces, no hex (unlike LISTEN_*, these
// are written by people, and "08080" or " 80" are more likely typos).
SOCKACT_DECL bool parse_port(std::string_view s, std::uint16_t& port) noexcept;

inline constexpr std::size_t max_unix_path = sizeof(sockaddr_un::sun_path) - 1;

/// One entry of an address list (see parse_endpoints()), the grammar every
/// address of sockact and its tools is written in.
/// @param problem on failure, what is wrong with the entry (not quoting it).
SOCKACT_DECL bool parse_endpoint(std::string_view s, endpoint& e, std::string& problem);

/// The socket address an inet, unix_path or unix_abstract endpoint binds to;
/// returns its length, 0 for an activated one.
SOCKACT_DECL socklen_t endpoint_address(const endpoint& e, sockaddr_storage& ss) noexcept;

/// The address list from SOCKET_PATH / HOST / PORT.
SOCKACT_DECL bool address_from_environment(std::vector<endpoint>& out, std::error_code& ec, std::string* why);

}  // namespace detail

/// Parses an address list: entries separated by commas or white space, each
/// one of `IPv4:PORT`, `[IPv6]:PORT`, `PORT` (all IPv4 interfaces), `/path` or
/// `./path` (unix socket), `@name` (abstract unix socket), `sd-listen` or
/// `sd-listen:*` (every fd passed by the service manager), `sd-listen:NAME`
/// (the fds named NAME). Host names are not resolved: give addresses.
/// @param why when not null, receives a message quoting the bad entry.
SOCKACT_DECL std::vector<endpoint> parse_endpoints(std::string_view list, std::error_code& ec,
                                                   std::string* why = nullptr);

/// Where to listen and how.
struct listen_config {
  /// Address list (see parse_endpoints()). Empty: from the environment, as
  /// SvelteKit's adapter-node: SOCKET_PATH if set, else HOST:PORT with HOST
  /// defaulting to 0.0.0.0 and PORT to 3000.
  std::string address;
  /// Receiving: by default (listen_options' default) the LISTEN_* variables
  /// are removed, so programs this server starts do not take its sockets.
  listen_options activation;
  int type = SOCK_STREAM;  ///< for bound sockets: SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET
  int backlog = SOMAXCONN;
  bool nonblocking = true;          ///< O_NONBLOCK on every socket returned (see set_nonblocking())
  std::optional<mode_t> unix_mode;  ///< chmod for bound unix sockets (before listen())
  bool remove_stale_unix = true;    ///< unlink a unix socket file nobody listens on, then bind
  bool reuse_port = false;          ///< SO_REUSEPORT on bound inet sockets
};

/// A socket to serve on, owned: one of the fds the manager passed (taken
/// over and checked), or one bound from the address list.
struct server_socket {
  unique_fd fd;
  std::string name;        ///< FileDescriptorName= when activated, else the address as written
  bool activated = false;  ///< passed by the service manager: never unlink or shut it down
  fd_info info;            ///< family, type, listening, local address, ...
};

/// Returns the sockets to serve on: the ones the service manager passed when
/// this process was socket-activated, otherwise sockets bound from `config`.
///
/// - Activated: every passed fd, or only those the `sd-listen:NAME` entries
///   ask for; other entries of the list are not bound. Fds not asked for stay
///   open and untouched.
/// - Not activated (no LISTEN_PID and no LISTEN_FDS): binds the concrete
///   entries; a list of only `sd-listen` entries is errc::not_activated.
/// - LISTEN_* present but unusable (another process's LISTEN_PID, a bad count,
///   a closed fd, a name mismatch, ...): errc::activation_unusable with the
///   diagnosis. It never falls back to binding a port of its own: clients of
///   the manager's socket would hang unanswered.
///
/// @param why when not null, receives a message naming the variable, value
///        or address at fault.
SOCKACT_DECL std::vector<server_socket> listen_or_bind(const listen_config& config, std::error_code& ec,
                                                       std::string* why = nullptr);

#if SOCKACT_HAS_EXCEPTIONS
/// @throws std::system_error whose what() is the message of the ec overload.
SOCKACT_DECL std::vector<server_socket> listen_or_bind(const listen_config& config);

/// @throws std::system_error quoting the bad entry.
SOCKACT_DECL std::vector<endpoint> parse_endpoints(std::string_view list);
#endif

}  // namespace sockact

#if defined(SOCKACT_HEADER_ONLY)
#include <sockact/impl/listen.ipp>
#endif

#endif  // SOCKACT_LISTEN_HPP
