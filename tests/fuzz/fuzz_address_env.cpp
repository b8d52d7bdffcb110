// SPDX-License-Identifier: MIT
// libFuzzer target: SOCKET_PATH / HOST / PORT as listen_or_bind() reads them
// when no address is configured. Only the parsing (address_from_environment)
// is fuzzed: binding would touch the file system and the network.
//
// Input: byte 0 says which variables are set (bit 0 SOCKET_PATH, 1 HOST,
// 2 PORT); the rest is cut at NUL bytes into their values.
#include <sockact/listen.hpp>  // first: the header must be self-contained

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using sockact_fuzz::show;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::vector<std::string> fields = sockact_fuzz::split_fields(data + 1, size - 1, 3);
  const char* const names[] = {"SOCKET_PATH", "HOST", "PORT"};
  std::optional<std::string> values[3];
  sockact_fuzz::put_env_fields(names, values, data[0], fields);
  const std::string context = sockact_fuzz::show_env(names, values);

  std::vector<sockact::endpoint> out;
  std::error_code ec;
  std::string why;
  const bool ok = sockact::detail::address_from_environment(out, ec, &why);
  SOCKACT_FUZZ_CHECK(ok == !ec, context);

  const bool use_path = values[0] && !values[0]->empty();
  if (!ok) {
    SOCKACT_FUZZ_CHECK(ec == sockact::errc::bad_address && out.empty(), context);
    const char* culprit = use_path ? "SOCKET_PATH=" : nullptr;
    if (!use_path) {
      std::uint16_t port = 0;
      culprit = sockact::detail::parse_port(values[2] ? *values[2] : "3000", port) ? "HOST=" : "PORT=";
    }
    SOCKACT_FUZZ_CHECK(why.rfind(culprit, 0) == 0, context + "\nwhy: " + why);
  } else {
    SOCKACT_FUZZ_CHECK(out.size() == 1, context);
    const sockact::endpoint& e = out[0];
    const std::string c = context + "\nendpoint: " + show(e.text);
    if (use_path) {
      const std::string& p = *values[0];
      if (p[0] == '@') {
        SOCKACT_FUZZ_CHECK(e.type == sockact::endpoint::kind::unix_abstract && e.path == p.substr(1), c);
      } else {
        SOCKACT_FUZZ_CHECK(e.type == sockact::endpoint::kind::unix_path, c);
        SOCKACT_FUZZ_CHECK(e.path == (p[0] == '/' || p.rfind("./", 0) == 0 ? p : "./" + p), c);
      }
    } else {
      // The address is exactly HOST and PORT, nothing smuggled in either.
      SOCKACT_FUZZ_CHECK(e.type == sockact::endpoint::kind::inet, c);
      SOCKACT_FUZZ_CHECK(e.host == (values[1] ? *values[1] : "0.0.0.0"), c + "\nhost: " + show(e.host));
      SOCKACT_FUZZ_CHECK(std::to_string(e.port) == (values[2] ? *values[2] : "3000") ||
                             (values[2] && std::stoul(*values[2]) == e.port),
                         c);
    }
  }
  for (const char* name : names) ::unsetenv(name);
  return 0;
}
