// Two translation units include every core header: a definition that is not
// inline becomes a duplicate-symbol link error here.
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/notify.hpp>
#include <sockact/sockact.hpp>

int sockact_odr_a() {
  return static_cast<int>(sockact::listen_fds_start);
}
