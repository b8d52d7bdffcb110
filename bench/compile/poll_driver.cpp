// Compile cost of the whole integration for a poll/epoll loop: the
// activation, connection tracking and the poll driver.
#include <sockact/poll_driver.hpp>
#include <string>
#include <system_error>
#include <vector>
int main() {
  return 0;
}
