// Compile-only: with neither SOCKACT_ASIO_BOOST nor SOCKACT_ASIO_STANDALONE
// defined, Boost.Asio is chosen when it is installed, else standalone asio.
// SPDX-License-Identifier: MIT
#include <sockact/asio.hpp>

#include <system_error>
#include <type_traits>

#if SOCKACT_TEST_HAVE_BOOST_ASIO
static_assert(std::is_same<sockact::asio_error_code, boost::system::error_code>::value,
              "Boost.Asio is installed, so it is the default");
static_assert(std::is_same<sockact::asio_ns::io_context, boost::asio::io_context>::value, "boost::asio");
#else
static_assert(std::is_same<sockact::asio_error_code, std::error_code>::value,
              "standalone asio is the fallback");
static_assert(std::is_same<sockact::asio_ns::io_context, asio::io_context>::value, "::asio");
#endif

int sockact_asio_default_flavour() {
  return 0;
}
