// Compile cost of the Asio adapter (pulls in the core and its Asio).
#include <sockact/asio.hpp>
int main() {
  return 0;
}
