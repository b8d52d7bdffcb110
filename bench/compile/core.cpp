// Compile cost of the core: the umbrella header.
#include <sockact/sockact.hpp>
#include <string>
#include <system_error>
#include <vector>
int main() {
  return 0;
}
