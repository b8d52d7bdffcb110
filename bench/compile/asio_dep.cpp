// Compile-cost baseline for the Asio adapter: the dependency alone
// (Boost.Asio with SOCKACT_ASIO_BOOST, standalone asio otherwise).
#if defined(SOCKACT_ASIO_BOOST)
#include <boost/asio.hpp>
#else
#include <asio.hpp>
#endif
int main() {
  return 0;
}
