// Compile cost of the libuv adapter (pulls in the core and <uv.h>).
#include <sockact/libuv.hpp>
int main() {
  return 0;
}
