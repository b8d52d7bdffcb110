// Compile-cost baseline for the libuv adapter: the dependency alone.
#include <uv.h>
int main() {
  return 0;
}
