// Compile cost of receiving fds only: the header a server that takes the
// passed fds itself includes.
#include <sockact/listen_fds.hpp>
#include <string>
#include <system_error>
#include <vector>
int main() {
  return 0;
}
