// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_HPP
#define SOCKACT_ASIO_HPP

// The Asio adapter: turns the sockets of listen_or_bind() or listen_fds() into
// Asio acceptors and sockets, after checking what each fd really is.
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
#include <sys/socket.h>
#include <cerrno>
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

}  // namespace asio_boost / asio_standalone
}  // namespace sockact

#endif  // SOCKACT_ASIO_HPP
