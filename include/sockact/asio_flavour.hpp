// SPDX-License-Identifier: MIT
#ifndef SOCKACT_ASIO_FLAVOUR_HPP
#define SOCKACT_ASIO_FLAVOUR_HPP

// Which Asio the adapter uses. Define one of these before including any
// sockact Asio header (or with -D) to choose:
//   SOCKACT_ASIO_BOOST       <boost/asio.hpp>, namespace boost::asio
//   SOCKACT_ASIO_STANDALONE  <asio.hpp>, namespace ::asio
// With neither, the flavour already included wins; otherwise Boost.Asio when
// <boost/asio.hpp> exists, else standalone asio.
//
// The adapter's names live in an inline namespace per flavour
// (SOCKACT_ASIO_NAMESPACE), so a program whose parts use different flavours
// has no clashing definitions.

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

// Before Asio: Boost 1.74's awaitable.hpp (pulled in by <boost/asio.hpp> at
// C++20) uses std::exchange without including <utility>.
#include <utility>

#if defined(SOCKACT_ASIO_BOOST)
#include <boost/asio.hpp>
#define SOCKACT_ASIO_NAMESPACE asio_boost
#else
#include <asio.hpp>
#define SOCKACT_ASIO_NAMESPACE asio_standalone
#endif

#include <system_error>

namespace sockact {
inline namespace SOCKACT_ASIO_NAMESPACE {

#if defined(SOCKACT_ASIO_BOOST)
namespace asio_ns = ::boost::asio;
/// The error code type of the selected Asio (what its handlers receive).
using asio_error_code = ::boost::system::error_code;
#else
namespace asio_ns = ::asio;
/// The error code type of the selected Asio (what its handlers receive).
using asio_error_code = ::std::error_code;
#endif

}  // namespace SOCKACT_ASIO_NAMESPACE
}  // namespace sockact

#endif  // SOCKACT_ASIO_FLAVOUR_HPP
