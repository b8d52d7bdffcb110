// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_ADOPT_HPP
#define SOCKACT_ASIO_ADOPT_HPP

// sockact::adopt<T>(): one Asio object (acceptor or socket) from one passed
// fd, after checking that the fd is what the object serves. Part of
// <sockact/asio.hpp>; the flavour is chosen as <sockact/asio_flavour.hpp> says.
//
// Errors are std::error_code in both flavours: sockact::errc for a socket of
// the wrong kind, errno values in std::generic_category() for the rest.

#include <sockact/asio_flavour.hpp>
#include <sockact/error.hpp>
#include <sockact/listen.hpp>
#include <sockact/socket_info.hpp>
#include <sockact/unique_fd.hpp>

#include <sys/socket.h>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace sockact {
inline namespace SOCKACT_ASIO_NAMESPACE {

/// An acceptor for listening SOCK_SEQPACKET sockets of any family (Asio has
/// no typed seqpacket protocol); family and protocol are the socket's own.
using asio_seqpacket_acceptor = asio_ns::basic_socket_acceptor<asio_ns::generic::seq_packet_protocol>;
/// A connected SOCK_SEQPACKET socket of any family.
using asio_seqpacket_socket = asio_ns::generic::seq_packet_protocol::socket;

namespace asio_detail {

// An io_context (any execution context) or an executor.
template <class T>
struct is_asio_context_or_executor
    : std::integral_constant<bool, std::is_convertible<T&, asio_ns::execution_context&>::value ||
                                       asio_ns::execution::is_executor<T>::value ||
                                       asio_ns::is_executor<T>::value> {};

template <class Context>
using enable_if_context_t =
    std::enable_if_t<is_asio_context_or_executor<std::remove_cv_t<std::remove_reference_t<Context>>>::value,
                     int>;

// An owning fd, moved in: a unique_fd or a server_socket (never an lvalue,
// which would lose its fd silently, nor a raw int).
template <class Fd>
using enable_if_owning_fd_t =
    std::enable_if_t<std::is_same<Fd, unique_fd>::value || std::is_same<Fd, server_socket>::value, int>;

// The executor of an io_context, or the executor itself.
template <class Context>
auto executor_of(Context& c) {
  if constexpr (std::is_convertible<Context&, asio_ns::execution_context&>::value)
    return c.get_executor();
  else
    return c;
}

using detail::wanted_family;
using detail::wanted_kind;
using detail::wanted_state;

// What each protocol is, and how a socket of it is described in messages.
template <class Protocol>
struct protocol_traits;
template <>
struct protocol_traits<asio_ns::ip::tcp> {
  static constexpr wanted_family family = wanted_family::inet;
  static constexpr int type = SOCK_STREAM;
  static constexpr const char* listening = "a listening TCP socket";
  static constexpr const char* connected = "a connected TCP socket";
  static asio_ns::ip::tcp make(const fd_info& i) {
    return i.family == AF_INET6 ? asio_ns::ip::tcp::v6() : asio_ns::ip::tcp::v4();
  }
};
template <>
struct protocol_traits<asio_ns::ip::udp> {
  static constexpr wanted_family family = wanted_family::inet;
  static constexpr int type = SOCK_DGRAM;
  static constexpr const char* any = "a UDP socket";
  static asio_ns::ip::udp make(const fd_info& i) {
    return i.family == AF_INET6 ? asio_ns::ip::udp::v6() : asio_ns::ip::udp::v4();
  }
};
template <>
struct protocol_traits<asio_ns::local::stream_protocol> {
  static constexpr wanted_family family = wanted_family::local;
  static constexpr int type = SOCK_STREAM;
  static constexpr const char* listening = "a listening unix stream socket";
  static constexpr const char* connected = "a connected unix stream socket";
  static asio_ns::local::stream_protocol make(const fd_info&) { return {}; }
};
template <>
struct protocol_traits<asio_ns::local::datagram_protocol> {
  static constexpr wanted_family family = wanted_family::local;
  static constexpr int type = SOCK_DGRAM;
  static constexpr const char* any = "a unix datagram socket";
  static asio_ns::local::datagram_protocol make(const fd_info&) { return {}; }
};
template <>
struct protocol_traits<asio_ns::generic::seq_packet_protocol> {
  static constexpr wanted_family family = wanted_family::any;
  static constexpr int type = SOCK_SEQPACKET;
  static constexpr const char* listening = "a listening seqpacket socket";
  static constexpr const char* connected = "a connected seqpacket socket";
  static asio_ns::generic::seq_packet_protocol make(const fd_info& i) { return {i.family, i.protocol}; }
};

// What adopt<T>() checks for each Asio object: the protocol's family and
// type, and whether the object listens, is connected, or either.
template <class P, wanted_state State>
constexpr wanted_kind wanted_of(const char* description) {
  return {description, protocol_traits<P>::family, protocol_traits<P>::type, 0, State};
}
template <class T>
struct object_traits;
template <class P, class E>
struct object_traits<asio_ns::basic_socket_acceptor<P, E>> {
  static constexpr wanted_kind wanted = wanted_of<P, wanted_state::listening>(protocol_traits<P>::listening);
};
template <class P, class E>
struct object_traits<asio_ns::basic_stream_socket<P, E>> {
  static constexpr wanted_kind wanted = wanted_of<P, wanted_state::connected>(protocol_traits<P>::connected);
};
template <class P, class E>
struct object_traits<asio_ns::basic_seq_packet_socket<P, E>> {
  static constexpr wanted_kind wanted = wanted_of<P, wanted_state::connected>(protocol_traits<P>::connected);
};
template <class P, class E>
struct object_traits<asio_ns::basic_datagram_socket<P, E>> {
  static constexpr wanted_kind wanted = wanted_of<P, wanted_state::any>(protocol_traits<P>::any);
};

inline bool fail_check(std::error_code code, std::string text, std::error_code& ec, std::string* why) {
  ec = code;
  if (why != nullptr) *why = std::move(text);
  return false;
}

// Asio reports errno values in its system category ("system" in Boost,
// "asio.system" in standalone asio); sockact uses the generic one.
inline std::error_code to_std_error(const asio_error_code& e) {
  if (e.category() == asio_ns::error::get_system_category()) return {e.value(), std::generic_category()};
  return static_cast<std::error_code>(e);
}

// Checks the fd, then hands it to a new Asio object. On any error the fd is
// untouched and still the caller's; on success it belongs to the object.
template <class Object, class Context>
Object adopt_fd(Context&& context, unique_fd& fd, const std::string& name, std::error_code& ec,
                std::string* why) {
  Object object(context);
  fd_info info;
  if (!detail::check_fd(fd.get(), name, object_traits<Object>::wanted, info, ec, why)) return object;
  asio_error_code aec;
  object.assign(protocol_traits<typename Object::protocol_type>::make(info), fd.get(), aec);
  if (aec) {  // e.g. EEXIST: this io_context already watches that fd (owned by another object)
    fail_check(to_std_error(aec),
               detail::fd_label(fd.get(), name) + ": Asio cannot take it: " + to_std_error(aec).message(), ec,
               why);
    return object;
  }
  fd.release();
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

}  // namespace asio_detail

/// Makes the Asio object `T` from an fd, after checking that the fd is what
/// `T` serves (family, type, protocol, listening or connected). The protocol
/// object is deduced from the socket (tcp::v4() or v6(), the seqpacket
/// socket's family). `T` is one of: tcp::acceptor, tcp::socket, udp::socket,
/// local::stream_protocol::acceptor and ::socket,
/// local::datagram_protocol::socket, asio_seqpacket_acceptor,
/// asio_seqpacket_socket (any executor type).
///
/// Ownership moves in on success (`fd` is then empty); on error `fd` still
/// holds the fd, untouched. O_NONBLOCK is left as it is (Asio sets it on the
/// first asynchronous operation). Nothing here shuts a socket down.
/// @param context io_context or executor the object will use.
/// @param fd the owning fd, moved in: a unique_fd, or a server_socket from
///        activation::sockets() or listen_or_bind(), whose name then appears
///        in messages.
/// @param ec EBADF (not open), errc::not_a_socket, errc::wrong_family,
///        errc::wrong_type, errc::not_listening, errc::not_connected, or what
///        Asio reported (EEXIST: the same io_context already watches the fd).
/// @param why when not null, receives a message naming the fd and what it is.
/// @code
///   auto acceptor = sockact::adopt<asio::ip::tcp::acceptor>(io, std::move(socket), ec, &why);
///   if (ec) throw std::system_error(ec, why);
/// @endcode
template <class T, class Context, class Fd, asio_detail::enable_if_context_t<Context> = 0,
          asio_detail::enable_if_owning_fd_t<Fd> = 0>
T adopt(Context&& context, Fd&& fd, std::error_code& ec, std::string* why = nullptr) {
  if constexpr (std::is_same<Fd, server_socket>::value)
    return asio_detail::adopt_fd<T>(context, fd.fd, fd.name, ec, why);
  else
    return asio_detail::adopt_fd<T>(context, fd, std::string(), ec, why);
}

#if SOCKACT_HAS_EXCEPTIONS
/// adopt<T>(context, fd, ec), throwing std::system_error (with the message
/// that names the fd) instead.
/// @throws std::system_error as `ec` above.
template <class T, class Context, class Fd, asio_detail::enable_if_context_t<Context> = 0,
          asio_detail::enable_if_owning_fd_t<Fd> = 0>
T adopt(Context&& context, Fd&& fd) {
  std::error_code ec;
  std::string why;
  T out = adopt<T>(std::forward<Context>(context), std::forward<Fd>(fd), ec, &why);
  if (ec) sockact::detail::throw_error(ec, "sockact::adopt: " + why);
  return out;
}
#endif

}  // namespace SOCKACT_ASIO_NAMESPACE
}  // namespace sockact

#endif  // SOCKACT_ASIO_ADOPT_HPP
