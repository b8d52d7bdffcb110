// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_HPP
#define SOCKACT_ASIO_HPP

// The Asio adapter: turns the sockets of listen_or_bind() or listen_fds() into
// Asio acceptors and sockets, after checking what each fd really is; and
// asio_lifecycle_driver runs a sockact::lifecycle (idle exit, graceful
// shutdown on SIGTERM/SIGINT, READY=1/STOPPING=1/WATCHDOG=1) on an io_context.
//
// Works with Boost.Asio and with standalone asio. Define one of these before
// including this header (or with -D) to choose:
//   SOCKACT_ASIO_BOOST       <boost/asio.hpp>, namespace boost::asio
//   SOCKACT_ASIO_STANDALONE  <asio.hpp>, namespace ::asio
// With neither, the flavour already included wins; otherwise Boost.Asio when
// <boost/asio.hpp> exists, else standalone asio.
//
// Errors are std::error_code in both flavours: sockact::errc for a socket of
// the wrong kind, errno values in std::generic_category() for the rest.

#if defined(SOCKACT_ASIO_BOOST) && defined(SOCKACT_ASIO_STANDALONE)
#error "sockact/asio.hpp: define SOCKACT_ASIO_BOOST or SOCKACT_ASIO_STANDALONE, not both"
#endif
#if !defined(SOCKACT_ASIO_BOOST) && !defined(SOCKACT_ASIO_STANDALONE)
#if defined(BOOST_ASIO_VERSION)
#define SOCKACT_ASIO_BOOST 1
#elif defined(ASIO_VERSION)
#define SOCKACT_ASIO_STANDALONE 1
#elif __has_include(<boost/asio.hpp>)
#define SOCKACT_ASIO_BOOST 1
#elif __has_include(<asio.hpp>)
#define SOCKACT_ASIO_STANDALONE 1
#else
#error \
    "sockact/asio.hpp needs Boost.Asio (<boost/asio.hpp>) or standalone asio (<asio.hpp>); neither was found"
#endif
#endif

#include <sockact/detail/config.hpp>
#include <sockact/detail/text.hpp>
#include <sockact/error.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/listen.hpp>
#include <sockact/listen_fds.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>

#if defined(SOCKACT_ASIO_BOOST)
#include <boost/asio.hpp>
#else
#include <asio.hpp>
#endif

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace sockact {

// The adapter's names live in an inline namespace per flavour, so a program
// whose parts use different flavours has no clashing definitions.
#if defined(SOCKACT_ASIO_BOOST)
inline namespace asio_boost {
#else
inline namespace asio_standalone {
#endif

#if defined(SOCKACT_ASIO_BOOST)
namespace asio_ns = ::boost::asio;
/// The error code type of the selected Asio (what its handlers receive).
using asio_error_code = ::boost::system::error_code;
#else
namespace asio_ns = ::asio;
/// The error code type of the selected Asio (what its handlers receive).
using asio_error_code = ::std::error_code;
#endif

/// An acceptor for listening SOCK_SEQPACKET sockets of any family (Asio has
/// no typed seqpacket protocol); family and protocol are the socket's own.
using asio_seqpacket_acceptor = asio_ns::basic_socket_acceptor<asio_ns::generic::seq_packet_protocol>;
/// A connected SOCK_SEQPACKET socket of any family.
using asio_seqpacket_socket = asio_ns::generic::seq_packet_protocol::socket;

/// Any of the objects the make_* functions return; std::monostate on error.
using asio_object =
    std::variant<std::monostate, asio_ns::ip::tcp::acceptor, asio_ns::local::stream_protocol::acceptor,
                 asio_ns::ip::udp::socket, asio_ns::local::datagram_protocol::socket, asio_seqpacket_acceptor,
                 asio_ns::ip::tcp::socket, asio_ns::local::stream_protocol::socket, asio_seqpacket_socket>;

namespace asio_detail {

// An io_context (any execution context) or an executor.
template <class T>
struct is_asio_context_or_executor
    : std::integral_constant<bool, std::is_convertible<T&, asio_ns::execution_context&>::value ||
                                       asio_ns::execution::is_executor<T>::value ||
                                       asio_ns::is_executor<T>::value> {};

// What an fd may be given as: a raw fd or a listen_fd (the caller owns it
// until success), or a listener or unique_fd by rvalue (released on success).
template <class S>
struct is_fd_source
    : std::integral_constant<bool, std::is_same<std::decay_t<S>, int>::value ||
                                       std::is_same<std::decay_t<S>, listen_fd>::value ||
                                       ((std::is_same<std::decay_t<S>, listener>::value ||
                                         std::is_same<std::decay_t<S>, unique_fd>::value) &&
                                        !std::is_lvalue_reference<S>::value && !std::is_const<S>::value)> {};

template <class Context, class Source>
using enable_asio_make_t =
    std::enable_if_t<is_asio_context_or_executor<std::remove_cv_t<std::remove_reference_t<Context>>>::value &&
                         is_fd_source<Source>::value,
                     int>;

struct fd_source {
  int fd = -1;
  std::string_view name;       // for messages only
  unique_fd* owner = nullptr;  // released once Asio holds the fd
};

inline fd_source source_of(int fd) noexcept {
  return {fd, {}, nullptr};
}
inline fd_source source_of(const listen_fd& l) noexcept {
  return {l.fd, l.name, nullptr};
}
inline fd_source source_of(unique_fd& fd) noexcept {
  return {fd.get(), {}, &fd};
}
inline fd_source source_of(listener& l) noexcept {
  return {l.fd.get(), l.name, &l.fd};
}

enum class asio_family { inet, local, any };
enum class asio_state { listening, connected, any };

// What one make_* function accepts.
struct asio_wanted {
  const char* function;
  const char* description;
  asio_family family;
  int type;
  asio_state state;
};

inline constexpr asio_wanted tcp_acceptor{"sockact::make_tcp_acceptor", "a listening TCP socket",
                                          asio_family::inet, SOCK_STREAM, asio_state::listening};
inline constexpr asio_wanted unix_acceptor{"sockact::make_unix_acceptor", "a listening unix stream socket",
                                           asio_family::local, SOCK_STREAM, asio_state::listening};
inline constexpr asio_wanted udp_socket{"sockact::make_udp_socket", "a UDP socket", asio_family::inet,
                                        SOCK_DGRAM, asio_state::any};
inline constexpr asio_wanted unix_datagram_socket{"sockact::make_unix_datagram_socket",
                                                  "a unix datagram socket", asio_family::local, SOCK_DGRAM,
                                                  asio_state::any};
inline constexpr asio_wanted seqpacket_acceptor{"sockact::make_seqpacket_acceptor",
                                                "a listening seqpacket socket", asio_family::any,
                                                SOCK_SEQPACKET, asio_state::listening};
inline constexpr asio_wanted tcp_connection{"sockact::make_tcp_connection", "a connected TCP socket",
                                            asio_family::inet, SOCK_STREAM, asio_state::connected};
inline constexpr asio_wanted unix_connection{"sockact::make_unix_connection",
                                             "a connected unix stream socket", asio_family::local,
                                             SOCK_STREAM, asio_state::connected};
inline constexpr asio_wanted seqpacket_connection{"sockact::make_seqpacket_connection",
                                                  "a connected seqpacket socket", asio_family::any,
                                                  SOCK_SEQPACKET, asio_state::connected};

inline bool is_inet(int family) noexcept {
  return family == AF_INET || family == AF_INET6;
}

inline constexpr int ipproto_mptcp = 262;  // IPPROTO_MPTCP, missing from older libc headers

// MPTCP is a drop-in for TCP (SocketProtocol=mptcp), UDP-Lite for UDP; the
// Asio protocol objects only carry the family for these once assigned.
inline bool protocol_fits(const asio_wanted& w, const fd_info& info) noexcept {
  if (w.family != asio_family::inet) return true;
  if (w.type == SOCK_STREAM) return info.protocol == IPPROTO_TCP || info.protocol == ipproto_mptcp;
  return info.protocol == IPPROTO_UDP || info.protocol == IPPROTO_UDPLITE;
}

inline std::string fd_label(const fd_source& src) {
  std::string out = "fd " + std::to_string(src.fd);
  if (!src.name.empty()) out += " (" + sockact::detail::quote(src.name) + ")";
  return out;
}

inline bool fail_check(std::error_code code, std::string text, std::error_code& ec, std::string* why) {
  ec = code;
  if (why != nullptr) *why = std::move(text);
  return false;
}

// Is the fd what `w` wants? Reads only; the fd is left as it was.
inline bool check_fd(const fd_source& src, const asio_wanted& w, fd_info& info, std::error_code& ec,
                     std::string* why) {
  info = describe_fd(src.fd, ec);
  if (ec) {
    return fail_check(
        ec, fd_label(src) + (ec == std::errc::bad_file_descriptor ? " is not open" : ": " + ec.message()), ec,
        why);
  }
  if (!info.is_socket())
    return fail_check(errc::not_a_socket, fd_label(src) + " is a " + kind_name(info.kind) + ", not a socket",
                      ec, why);
  errc problem{};
  if (w.family == asio_family::inet ? !is_inet(info.family)
                                    : w.family == asio_family::local && info.family != AF_UNIX)
    problem = errc::wrong_family;
  else if (info.type != w.type || !protocol_fits(w, info))
    problem = errc::wrong_type;
  else if (w.state == asio_state::listening && !info.listening)
    problem = errc::not_listening;
  else if (w.state == asio_state::connected && (info.listening || !info.connected))
    problem = errc::not_connected;
  if (problem == errc{}) {
    ec.clear();
    return true;
  }
  std::string got = info.to_string();
  got.erase(0, got.find(": ") + 2);  // drop "fd N: ", already in the label
  return fail_check(problem, fd_label(src) + ": wanted " + w.description + ", got " + got, ec, why);
}

// Asio reports errno values in its system category ("system" in Boost,
// "asio.system" in standalone asio); sockact uses the generic one.
inline std::error_code to_std_error(const asio_error_code& e) {
  if (e.category() == asio_ns::error::get_system_category()) return {e.value(), std::generic_category()};
  return static_cast<std::error_code>(e);
}

template <class P>
struct protocol_tag {};

inline asio_ns::ip::tcp make_protocol(protocol_tag<asio_ns::ip::tcp>, const fd_info& info) {
  return info.family == AF_INET6 ? asio_ns::ip::tcp::v6() : asio_ns::ip::tcp::v4();
}
inline asio_ns::ip::udp make_protocol(protocol_tag<asio_ns::ip::udp>, const fd_info& info) {
  return info.family == AF_INET6 ? asio_ns::ip::udp::v6() : asio_ns::ip::udp::v4();
}
inline asio_ns::local::stream_protocol make_protocol(protocol_tag<asio_ns::local::stream_protocol>,
                                                     const fd_info&) {
  return {};
}
inline asio_ns::local::datagram_protocol make_protocol(protocol_tag<asio_ns::local::datagram_protocol>,
                                                       const fd_info&) {
  return {};
}
inline asio_ns::generic::seq_packet_protocol make_protocol(
    protocol_tag<asio_ns::generic::seq_packet_protocol>, const fd_info& info) {
  return {info.family, info.protocol};
}

// Checks the fd, then hands it to a new Asio object. On any error the fd is
// untouched and still the caller's; on success it belongs to the object.
template <class Object, class Context>
Object adopt(Context& context, const fd_source& src, const asio_wanted& w, std::error_code& ec,
             std::string* why) {
  Object object(context);
  fd_info info;
  if (!check_fd(src, w, info, ec, why)) return object;
  asio_error_code aec;
  object.assign(make_protocol(protocol_tag<typename Object::protocol_type>{}, info), src.fd, aec);
  if (aec) {  // e.g. EEXIST: this io_context already watches that fd (owned by another object)
    fail_check(to_std_error(aec), fd_label(src) + ": Asio cannot take it: " + to_std_error(aec).message(), ec,
               why);
    return object;
  }
  if (src.owner != nullptr) src.owner->release();
  // Tell Asio what the fd already is. A blocking fd stays blocking until Asio
  // starts its first asynchronous operation on it, when Asio sets O_NONBLOCK
  // itself; that flag is shared with the service manager's copy.
  if (info.nonblocking) {
    asio_error_code ignored;  // bookkeeping only: Asio sets the flag again when it needs it
    object.native_non_blocking(true, ignored);
  }
  ec.clear();
  return object;
}

#if SOCKACT_HAS_EXCEPTIONS
template <class Object, class Context>
Object adopt_or_throw(Context& context, const fd_source& src, const asio_wanted& w) {
  std::error_code ec;
  std::string why;
  Object object = adopt<Object>(context, src, w, ec, &why);
  if (ec) sockact::detail::throw_error(ec, std::string(w.function) + ": " + why);
  return object;
}
#endif

template <class Object, class Context>
asio_object adopt_any(Context& context, const fd_source& src, const asio_wanted& w, std::error_code& ec,
                      std::string* why) {
  Object object = adopt<Object>(context, src, w, ec, why);
  if (ec) return {};
  return asio_object(std::in_place_type<Object>, std::move(object));
}

}  // namespace asio_detail

// Each make_* function checks what the fd really is (family, type, protocol,
// listening or connected) and only then gives it to a new Asio object. The fd
// may be given as:
//   - `listener&&` (from listen_or_bind()) or `unique_fd&&`: released into the
//     Asio object on success; on error the caller's object still owns it;
//   - `int` or `const listen_fd&` (from listen_fds()): on success the Asio
//     object owns the fd and closes it when closed or destroyed, so the caller
//     must not close it; on error it is untouched and still the caller's.
// The context is an io_context (any execution context) or an executor.
//
// Errors: EBADF (not open), errc::not_a_socket, errc::wrong_family,
// errc::wrong_type, errc::not_listening, errc::not_connected, or what Asio
// reported when it could not take the fd (EEXIST when the same io_context
// already watches it). `why`, when not null, receives a message naming the fd
// and what it is instead.
//
// O_NONBLOCK: left as it is. Asio sets it on the first asynchronous operation
// (and is told when it is already set), so an event loop never blocks on an
// inherited blocking socket. O_NONBLOCK belongs to the open file, which is
// shared with the service manager's copy. Nothing here shuts a socket down.

/// Makes a TCP acceptor from a listening TCP (or MPTCP) socket; its protocol
/// is tcp::v4() or tcp::v6() as the socket's family is.
/// @param context io_context or executor the acceptor will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&` (see above).
/// @param ec set on error (the fd is then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   std::vector<sockact::listener> ls = sockact::listen_or_bind({});
///   asio::io_context io;
///   asio::ip::tcp::acceptor acceptor = sockact::make_tcp_acceptor(io, std::move(ls.at(0)));
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::ip::tcp::acceptor make_tcp_acceptor(Context&& context, Source&& source, std::error_code& ec,
                                             std::string* why = nullptr) {
  return asio_detail::adopt<asio_ns::ip::tcp::acceptor>(context, asio_detail::source_of(source),
                                                        asio_detail::tcp_acceptor, ec, why);
}

/// Makes a unix stream acceptor from a listening AF_UNIX SOCK_STREAM socket
/// (path, abstract or unnamed).
/// @param context io_context or executor the acceptor will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (the fd is then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   auto acceptor = sockact::make_unix_acceptor(io, std::move(listener), ec);
///   if (ec == sockact::errc::wrong_family) { /* an inet socket: use make_tcp_acceptor */ }
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::local::stream_protocol::acceptor make_unix_acceptor(Context&& context, Source&& source,
                                                             std::error_code& ec,
                                                             std::string* why = nullptr) {
  return asio_detail::adopt<asio_ns::local::stream_protocol::acceptor>(
      context, asio_detail::source_of(source), asio_detail::unix_acceptor, ec, why);
}

/// Makes a UDP socket (udp::v4() or udp::v6()) from an AF_INET/AF_INET6
/// SOCK_DGRAM socket of protocol UDP or UDP-Lite, connected or not.
/// @param context io_context or executor the socket will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (the fd is then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   asio::ip::udp::socket dns = sockact::make_udp_socket(io, std::move(listener));
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::ip::udp::socket make_udp_socket(Context&& context, Source&& source, std::error_code& ec,
                                         std::string* why = nullptr) {
  return asio_detail::adopt<asio_ns::ip::udp::socket>(context, asio_detail::source_of(source),
                                                      asio_detail::udp_socket, ec, why);
}

/// Makes a unix datagram socket from an AF_UNIX SOCK_DGRAM socket (ListenDatagram=/path).
/// @param context io_context or executor the socket will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (the fd is then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   auto log = sockact::make_unix_datagram_socket(io, std::move(listener));
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::local::datagram_protocol::socket make_unix_datagram_socket(Context&& context, Source&& source,
                                                                    std::error_code& ec,
                                                                    std::string* why = nullptr) {
  return asio_detail::adopt<asio_ns::local::datagram_protocol::socket>(
      context, asio_detail::source_of(source), asio_detail::unix_datagram_socket, ec, why);
}

/// Makes a seqpacket acceptor from a listening SOCK_SEQPACKET socket of any
/// family (ListenSequentialPacket=); the protocol has the socket's own family
/// and protocol, and accepted sockets are asio_seqpacket_socket.
/// @param context io_context or executor the acceptor will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (the fd is then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   sockact::asio_seqpacket_acceptor acceptor = sockact::make_seqpacket_acceptor(io, std::move(listener));
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_seqpacket_acceptor make_seqpacket_acceptor(Context&& context, Source&& source, std::error_code& ec,
                                                std::string* why = nullptr) {
  return asio_detail::adopt<asio_seqpacket_acceptor>(context, asio_detail::source_of(source),
                                                     asio_detail::seqpacket_acceptor, ec, why);
}

/// Makes a TCP socket from a connected TCP socket: the one connection an
/// Accept=yes service is started with (`listener.info.connected`).
/// @param context io_context or executor the socket will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (errc::not_connected for a listening socket; the fd is
///        then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   if (listener.info.connected) serve(sockact::make_tcp_connection(io, std::move(listener)));
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::ip::tcp::socket make_tcp_connection(Context&& context, Source&& source, std::error_code& ec,
                                             std::string* why = nullptr) {
  return asio_detail::adopt<asio_ns::ip::tcp::socket>(context, asio_detail::source_of(source),
                                                      asio_detail::tcp_connection, ec, why);
}

/// Makes a unix stream socket from a connected AF_UNIX SOCK_STREAM socket
/// (Accept=yes on a unix socket, or one end of a socketpair).
/// @param context io_context or executor the socket will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (the fd is then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   asio::local::stream_protocol::socket client = sockact::make_unix_connection(io, std::move(listener));
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::local::stream_protocol::socket make_unix_connection(Context&& context, Source&& source,
                                                             std::error_code& ec,
                                                             std::string* why = nullptr) {
  return asio_detail::adopt<asio_ns::local::stream_protocol::socket>(context, asio_detail::source_of(source),
                                                                     asio_detail::unix_connection, ec, why);
}

/// Makes a seqpacket socket from a connected SOCK_SEQPACKET socket of any family.
/// @param context io_context or executor the socket will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (the fd is then untouched), cleared on success.
/// @param why when not null, receives a message on error.
/// @code
///   sockact::asio_seqpacket_socket peer = sockact::make_seqpacket_connection(io, std::move(listener));
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_seqpacket_socket make_seqpacket_connection(Context&& context, Source&& source, std::error_code& ec,
                                                std::string* why = nullptr) {
  return asio_detail::adopt<asio_seqpacket_socket>(context, asio_detail::source_of(source),
                                                   asio_detail::seqpacket_connection, ec, why);
}

/// Makes whichever Asio object fits the fd: an acceptor for a listening
/// socket, a socket for a connection or a datagram socket (see asio_object).
/// A stream or seqpacket socket that is neither listening nor connected is
/// errc::not_listening; other sockets (raw, SCTP streams, ...) errc::wrong_type.
/// @param context io_context or executor the object will use.
/// @param source the fd: `listener&&`, `unique_fd&&`, `int` or `const listen_fd&`.
/// @param ec set on error (the fd is then untouched, the result std::monostate).
/// @param why when not null, receives a message on error.
/// @code
///   sockact::asio_object o = sockact::make_asio_object(io, std::move(listener), ec);
///   if (auto* acceptor = std::get_if<asio::ip::tcp::acceptor>(&o)) start_accepting(*acceptor);
/// @endcode
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_object make_asio_object(Context&& context, Source&& source, std::error_code& ec,
                             std::string* why = nullptr) {
  const asio_detail::fd_source src = asio_detail::source_of(source);
  fd_info info = describe_fd(src.fd, ec);
  if (ec || !info.is_socket()) {
    asio_detail::asio_wanted any{"sockact::make_asio_object", "a socket", asio_detail::asio_family::any, 0,
                                 asio_detail::asio_state::any};
    asio_detail::check_fd(src, any, info, ec, why);
    return {};
  }
  const bool inet = asio_detail::is_inet(info.family), local = info.family == AF_UNIX;
  if (info.type == SOCK_STREAM && inet && asio_detail::protocol_fits(asio_detail::tcp_acceptor, info)) {
    if (info.connected)
      return asio_detail::adopt_any<asio_ns::ip::tcp::socket>(context, src, asio_detail::tcp_connection, ec,
                                                              why);
    return asio_detail::adopt_any<asio_ns::ip::tcp::acceptor>(context, src, asio_detail::tcp_acceptor, ec,
                                                              why);
  }
  if (info.type == SOCK_STREAM && local) {
    if (info.connected)
      return asio_detail::adopt_any<asio_ns::local::stream_protocol::socket>(
          context, src, asio_detail::unix_connection, ec, why);
    return asio_detail::adopt_any<asio_ns::local::stream_protocol::acceptor>(
        context, src, asio_detail::unix_acceptor, ec, why);
  }
  if (info.type == SOCK_DGRAM && inet && asio_detail::protocol_fits(asio_detail::udp_socket, info))
    return asio_detail::adopt_any<asio_ns::ip::udp::socket>(context, src, asio_detail::udp_socket, ec, why);
  if (info.type == SOCK_DGRAM && local)
    return asio_detail::adopt_any<asio_ns::local::datagram_protocol::socket>(
        context, src, asio_detail::unix_datagram_socket, ec, why);
  if (info.type == SOCK_SEQPACKET) {
    if (info.connected)
      return asio_detail::adopt_any<asio_seqpacket_socket>(context, src, asio_detail::seqpacket_connection,
                                                           ec, why);
    return asio_detail::adopt_any<asio_seqpacket_acceptor>(context, src, asio_detail::seqpacket_acceptor, ec,
                                                           why);
  }
  std::string got = info.to_string();
  got.erase(0, got.find(": ") + 2);
  asio_detail::fail_check(errc::wrong_type, asio_detail::fd_label(src) + ": no Asio type for " + got, ec,
                          why);
  return {};
}

#if SOCKACT_HAS_EXCEPTIONS
// The throwing forms: the same, but errors throw std::system_error whose
// what() names the function, the fd (and its name) and what it is instead.

/// make_tcp_acceptor() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::ip::tcp::acceptor make_tcp_acceptor(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_ns::ip::tcp::acceptor>(context, asio_detail::source_of(source),
                                                                 asio_detail::tcp_acceptor);
}

/// make_unix_acceptor() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::local::stream_protocol::acceptor make_unix_acceptor(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_ns::local::stream_protocol::acceptor>(
      context, asio_detail::source_of(source), asio_detail::unix_acceptor);
}

/// make_udp_socket() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::ip::udp::socket make_udp_socket(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_ns::ip::udp::socket>(context, asio_detail::source_of(source),
                                                               asio_detail::udp_socket);
}

/// make_unix_datagram_socket() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::local::datagram_protocol::socket make_unix_datagram_socket(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_ns::local::datagram_protocol::socket>(
      context, asio_detail::source_of(source), asio_detail::unix_datagram_socket);
}

/// make_seqpacket_acceptor() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_seqpacket_acceptor make_seqpacket_acceptor(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_seqpacket_acceptor>(context, asio_detail::source_of(source),
                                                              asio_detail::seqpacket_acceptor);
}

/// make_tcp_connection() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::ip::tcp::socket make_tcp_connection(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_ns::ip::tcp::socket>(context, asio_detail::source_of(source),
                                                               asio_detail::tcp_connection);
}

/// make_unix_connection() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_ns::local::stream_protocol::socket make_unix_connection(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_ns::local::stream_protocol::socket>(
      context, asio_detail::source_of(source), asio_detail::unix_connection);
}

/// make_seqpacket_connection() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_seqpacket_socket make_seqpacket_connection(Context&& context, Source&& source) {
  return asio_detail::adopt_or_throw<asio_seqpacket_socket>(context, asio_detail::source_of(source),
                                                            asio_detail::seqpacket_connection);
}

/// make_asio_object() that throws.
/// @throws std::system_error with the error code and message of the ec overload.
template <class Context, class Source, asio_detail::enable_asio_make_t<Context, Source> = 0>
asio_object make_asio_object(Context&& context, Source&& source) {
  std::error_code ec;
  std::string why;
  asio_object object = make_asio_object(context, std::forward<Source>(source), ec, &why);
  if (ec) sockact::detail::throw_error(ec, "sockact::make_asio_object: " + why);
  return object;
}
#endif

// ---------------------------------------------------------------------------
// Idle timeout, graceful shutdown and the notify protocol on an io_context
// ---------------------------------------------------------------------------

namespace asio_detail {

// The driver's state. Its handlers hold it by shared_ptr, so it outlives them
// even when the driver object is destroyed while a wait is still pending.
class lifecycle_driver_state : public std::enable_shared_from_this<lifecycle_driver_state> {
 public:
  using clock = lifecycle::clock;
  using action_handler = std::function<void(const lifecycle_actions&)>;

  template <class Context>
  lifecycle_driver_state(Context& context, lifecycle& lc, action_handler on_actions)
      : lifecycle_(lc), on_actions_(std::move(on_actions)), timer_(context), signals_(context) {}

  void start(std::error_code& ec) {
    ec.clear();
    if (started_ || lifecycle_.current() == lifecycle::phase::done) return;
    asio_error_code aec;
    signals_.add(SIGTERM, aec);
    if (!aec) signals_.add(SIGINT, aec);
    if (aec) {
      asio_error_code ignored;
      signals_.clear(ignored);  // back to the dispositions there were
      ec = to_std_error(aec);
      return;
    }
    started_ = running_ = true;
    wait_for_signal();
    arm();
  }

  void stop() noexcept {
    if (!running_) return;
    running_ = false;
    ++timer_generation_;
    timer_.cancel();  // cannot fail
    asio_error_code ignored;
    signals_.cancel(ignored);  // the signals stay registered, so more of them are ignored
  }

  bool running() const noexcept { return running_; }

  void connections_changed(std::size_t open) {
    open_ = open;
    poke();
  }

  // Evaluates later, from the loop: never calls the handler from inside the
  // application's own call, so the handler may close connections freely.
  void poke() {
    if (!running_ || update_posted_) return;
    update_posted_ = true;
    asio_ns::post(timer_.get_executor(), [self = shared_from_this()] {
      self->update_posted_ = false;
      if (self->running_) self->tick();
    });
  }

 private:
  // Safe at any time: the lifecycle acts only on deadlines that have come.
  void tick() { step(lifecycle_.on_timer(clock::now())); }

  // Every event ends here: the drain ends when nothing is open, the timer
  // follows the lifecycle's next deadline, and the application is told what
  // to do last, so that whatever it does (even throw) leaves the driver whole.
  void step(lifecycle_actions a) {
    a |= lifecycle_.on_connections(open_);
    if (a.finished)
      stop();
    else
      arm();
    if (a.any() && on_actions_) on_actions_(a);
  }

  void arm() {
    const clock::time_point now = clock::now();
    clock::time_point due = lifecycle_.next_deadline(now);
    // Asio has no hook for "before the loop waits", where an epoll loop or
    // libuv's prepare handle looks at the tracker again. So while serving, the
    // timer also fires every check_interval(): activity that came and went
    // between two idle deadlines would otherwise be seen only at the second,
    // and the exit could come up to twice the timeout after it.
    idle_tracker& tracker = lifecycle_.tracker();
    if (lifecycle_.current() == lifecycle::phase::serving && tracker.enabled())
      due = std::min(due, now + tracker.check_interval());
    // A timer that fires earlier than needed only costs a tick().
    if (timer_armed_ ? armed_for_ <= due : due == clock::time_point::max()) return;
    ++timer_generation_;     // a wait still pending is stale from now on
    timer_.expires_at(due);  // and cancelled
    armed_for_ = due;
    timer_armed_ = true;
    timer_.async_wait([self = shared_from_this(), generation = timer_generation_](const asio_error_code&) {
      if (generation != self->timer_generation_) return;
      self->timer_armed_ = false;
      if (self->running_) self->tick();
    });
  }

  void wait_for_signal() {
    signals_.async_wait([self = shared_from_this()](const asio_error_code& ec, int signo) {
      if (ec || !self->running_) return;
      self->step(self->lifecycle_.on_signal(signo));
      if (self->running_) self->wait_for_signal();
    });
  }

  lifecycle& lifecycle_;
  action_handler on_actions_;
  asio_ns::basic_waitable_timer<clock> timer_;
  asio_ns::signal_set signals_;
  clock::time_point armed_for_{};
  std::size_t open_ = 0;
  unsigned long timer_generation_ = 0;
  bool started_ = false, running_ = false, timer_armed_ = false, update_posted_ = false;
};

}  // namespace asio_detail

/// Drives a sockact::lifecycle on an io_context: a timer follows
/// lifecycle::next_deadline() (idle deadline, watchdog pings, drain deadline)
/// and a signal_set catches SIGTERM and SIGINT. After each event it calls the
/// application's handler with the lifecycle_actions to carry out:
///   - stop_accepting: close the acceptors (close, never shutdown(2): the
///     service manager keeps its copies and starts the service again);
///   - close_idle: close the connections that finished a request and wait
///     for the next (no request in progress);
///   - close_new: close the connections that have sent nothing yet (they get
///     lifecycle_config::new_connection_grace to send their request first);
///   - close_all: close every connection;
///   - finished: the driver has stopped itself (timer and signal wait
///     cancelled); io_context::run() returns once the application's own
///     handlers are done, and main() returns 0.
/// The application reports its number of open connections with
/// connections_changed(), so that the drain ends as soon as none is left.
///
/// The idle exit comes between the idle timeout and one check_interval() more
/// after the last activity ended, never earlier. As Asio cannot say when its
/// loop is about to wait, the timer looks at the tracker every
/// check_interval() while serving (a tenth of the timeout, 10 ms to 1 s).
///
/// One thread: call it from the thread that runs the io_context (or within
/// the strand given as executor); the handler runs there too, never from
/// inside a call to the driver. Activity guards (lifecycle::tracker().begin())
/// may be taken and dropped anywhere. While the driver exists, SIGTERM and
/// SIGINT no longer kill the process, also after it stopped.
/// @code
///   sockact::lifecycle lc(sockact::lifecycle_from_environment(), activated, listen_fds);
///   sockact::asio_lifecycle_driver driver(io, lc, [&](const sockact::lifecycle_actions& a) {
///     if (a.stop_accepting) acceptor.close();
///     if (a.close_all) close_every_connection();
///     else {
///       if (a.close_idle) close_connections(waiting_for_their_next_request);
///       if (a.close_new) close_connections(that_sent_nothing_yet);
///     }
///   });
///   driver.start();  // before the first signal can come
///   lc.ready();
///   io.run();        // returns after the drain
/// @endcode
class asio_lifecycle_driver {
 public:
  /// What the application does; called with at least one action set.
  using action_handler = std::function<void(const lifecycle_actions&)>;

  /// Does not start anything yet: see start().
  /// @param context io_context or executor the timer and signal_set use.
  /// @param lc the lifecycle to drive; it must outlive the driver.
  /// @param on_actions the application's part (see above).
  template <class Context, std::enable_if_t<asio_detail::is_asio_context_or_executor<
                                                std::remove_cv_t<std::remove_reference_t<Context>>>::value,
                                            int> = 0>
  asio_lifecycle_driver(Context&& context, lifecycle& lc, action_handler on_actions)
      : state_(std::make_shared<asio_detail::lifecycle_driver_state>(context, lc, std::move(on_actions))) {}

  asio_lifecycle_driver(asio_lifecycle_driver&&) noexcept = default;
  asio_lifecycle_driver& operator=(asio_lifecycle_driver&& o) noexcept {
    if (this != &o) {
      stop();
      state_ = std::move(o.state_);
    }
    return *this;
  }
  asio_lifecycle_driver(const asio_lifecycle_driver&) = delete;
  asio_lifecycle_driver& operator=(const asio_lifecycle_driver&) = delete;
  /// Stops the driver (see stop()).
  ~asio_lifecycle_driver() { stop(); }

  /// Installs the handlers for SIGTERM and SIGINT and arms the timer. Call it
  /// before a signal can come (before lifecycle::ready()). Does nothing when
  /// already started, or when the lifecycle is done.
  /// @param ec what Asio reported when it could not install the signal
  ///        handlers (nothing is then installed); cleared on success.
  /// @code
  ///   std::error_code ec;
  ///   driver.start(ec);
  ///   if (ec) std::fprintf(stderr, "cannot catch SIGTERM: %s\n", ec.message().c_str());
  /// @endcode
  void start(std::error_code& ec) {
    ec.clear();
    if (const std::shared_ptr<asio_detail::lifecycle_driver_state> s = state_) s->start(ec);
  }

#if SOCKACT_HAS_EXCEPTIONS
  /// start() that throws.
  /// @throws std::system_error when the signal handlers cannot be installed.
  void start() {
    std::error_code ec;
    start(ec);
    if (ec)
      sockact::detail::throw_error(ec, "sockact::asio_lifecycle_driver::start: cannot catch SIGTERM/SIGINT");
  }
#endif

  /// Reports how many connections are open now, after each open and close.
  /// While draining, zero ends the drain (`finished`); the handler learns of
  /// it from the loop, not from inside this call.
  void connections_changed(std::size_t open) {
    if (state_) state_->connections_changed(open);
  }

  /// Makes the driver look at the lifecycle again soon (from the loop): after
  /// the application changed something the driver cannot see.
  void poke() {
    if (state_) state_->poke();
  }

  /// Stops for good: cancels the timer and the signal wait, so that they no
  /// longer keep io_context::run() from returning. The lifecycle stays where
  /// it is; the handler is not called again. The signal handlers stay
  /// installed until the driver is destroyed: later signals are ignored.
  void stop() noexcept {
    if (state_) state_->stop();
  }

  /// Started, and neither finished nor stopped.
  bool running() const noexcept {
    return state_ && state_->running();
  }

 private:
  std::shared_ptr<asio_detail::lifecycle_driver_state> state_;
};

}  // namespace asio_boost / asio_standalone
}  // namespace sockact

#endif  // SOCKACT_ASIO_HPP
