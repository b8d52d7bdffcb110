// A fairer baseline for the libuv adapter: <uv.h> is C, so add what any C++
// server includes anyway (the core's baseline).
#include <uv.h>
#include <string>
#include <system_error>
#include <vector>
int main() {
  return 0;
}
