// Compile-cost baseline: what almost any C++ server includes anyway.
#include <string>
#include <system_error>
#include <vector>
int main() {
  return 0;
}
