// Compile-only: with neither macro defined, the flavour the program already
// included wins, even when the other one is installed too.
// SPDX-License-Identifier: MIT
#if SOCKACT_TEST_HAVE_STANDALONE_ASIO
#include <asio.hpp>
#elif SOCKACT_TEST_HAVE_BOOST_ASIO
#include <boost/asio.hpp>
#endif
#include <sockact/asio.hpp>

#include <system_error>
#include <type_traits>

#if SOCKACT_TEST_HAVE_STANDALONE_ASIO
static_assert(std::is_same<sockact::asio_error_code, std::error_code>::value, "asio.hpp came first");
static_assert(std::is_same<sockact::asio_ns::io_context, asio::io_context>::value, "::asio");
#else
static_assert(std::is_same<sockact::asio_ns::io_context, boost::asio::io_context>::value, "boost::asio");
#endif

int sockact_asio_already_included_flavour() {
  return 0;
}
