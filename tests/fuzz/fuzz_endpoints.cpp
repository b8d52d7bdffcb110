// SPDX-License-Identifier: MIT
// libFuzzer target: the address grammar, parse_endpoints(). The whole input
// is one address list (NUL bytes included: a std::string_view may hold them).
#include <sockact/listen.hpp>  // first: the header must be self-contained

#include <sockact/detail/text.hpp>

#include "fuzz_support.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using sockact_fuzz::show;

namespace {

bool same(const sockact::endpoint& a, const sockact::endpoint& b) {
  return a.type == b.type && a.text == b.text && a.family == b.family && a.host == b.host &&
         a.port == b.port && a.path == b.path && a.name == b.name;
}

bool separator(char c) {
  return c == ',' || c == ' ' || c == '\t' || c == '\n';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string context = "input: " + show(input);
  std::error_code ec;
  std::string why;
  const std::vector<sockact::endpoint> eps = sockact::parse_endpoints(input, ec, &why);

  if (ec) {
    SOCKACT_FUZZ_CHECK(ec == sockact::errc::bad_address, context);
    SOCKACT_FUZZ_CHECK(eps.empty(), context);
    SOCKACT_FUZZ_CHECK(why.rfind("bad address \"", 0) == 0, context + "\nwhy: " + why);
  } else {
    SOCKACT_FUZZ_CHECK(why.empty(), context);
  }

  // The throwing form agrees.
  try {
    const std::vector<sockact::endpoint> again = sockact::parse_endpoints(input);
    SOCKACT_FUZZ_CHECK(!ec && again.size() == eps.size(), context);
  } catch (const std::system_error& e) {
    SOCKACT_FUZZ_CHECK(ec && e.code() == ec, context);
    SOCKACT_FUZZ_CHECK(std::string(e.what()).find(why) != std::string::npos, context);
  }

  std::size_t from = 0;  // entries are found in order, without overlap
  for (const sockact::endpoint& e : eps) {
    const std::string c = context + "\nentry: " + show(e.text);
    SOCKACT_FUZZ_CHECK(!e.text.empty(), c);
    const std::size_t at = input.find(e.text, from);
    SOCKACT_FUZZ_CHECK(at != std::string_view::npos, c);
    from = at + e.text.size();
    for (const char ch : e.text) SOCKACT_FUZZ_CHECK(!separator(ch), c);

    switch (e.type) {
      case sockact::endpoint::kind::inet: {
        SOCKACT_FUZZ_CHECK(e.family == AF_INET || e.family == AF_INET6, c);
        unsigned char buf[16];
        SOCKACT_FUZZ_CHECK(::inet_pton(e.family, e.host.c_str(), buf) == 1, c);
        SOCKACT_FUZZ_CHECK(e.host.find('\0') == std::string::npos, c);
        // The port is written in the text, in decimal, at its end.
        const std::string port = std::to_string(e.port);
        SOCKACT_FUZZ_CHECK(e.text.size() >= port.size(), c);
        const std::string tail =
            e.text.substr(e.text.rfind(':') == std::string::npos ? 0 : e.text.rfind(':') + 1);
        SOCKACT_FUZZ_CHECK(!tail.empty() && tail.size() <= 5 && std::stoul(tail) == e.port, c);
        SOCKACT_FUZZ_CHECK(e.path.empty() && e.name.empty(), c);
        break;
      }
      case sockact::endpoint::kind::unix_path:
        SOCKACT_FUZZ_CHECK(e.path == e.text, c);
        SOCKACT_FUZZ_CHECK(e.path.size() <= sockact::detail::max_unix_path, c);
        SOCKACT_FUZZ_CHECK(e.path[0] == '/' || e.path.rfind("./", 0) == 0 || e.path.rfind("../", 0) == 0, c);
        break;
      case sockact::endpoint::kind::unix_abstract:
        SOCKACT_FUZZ_CHECK("@" + e.path == e.text, c);
        SOCKACT_FUZZ_CHECK(!e.path.empty() && e.path.size() <= sockact::detail::max_unix_path, c);
        break;
      case sockact::endpoint::kind::activated:
        SOCKACT_FUZZ_CHECK(e.text.rfind("sd-listen", 0) == 0, c);
        SOCKACT_FUZZ_CHECK(
            e.name.empty() == (e.text == "sd-listen" || e.text == "sd-listen:*" || e.text == "sd-listen:"),
            c);
        break;
    }

    // Re-parsing an entry's own text gives the same entry, alone.
    std::error_code ec2;
    const std::vector<sockact::endpoint> one = sockact::parse_endpoints(e.text, ec2);
    SOCKACT_FUZZ_CHECK(!ec2 && one.size() == 1 && same(one[0], e), c);

    // An inet entry written back canonically parses to the same address.
    if (e.type == sockact::endpoint::kind::inet) {
      const std::string canonical =
          (e.family == AF_INET6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
      const std::vector<sockact::endpoint> back = sockact::parse_endpoints(canonical, ec2);
      SOCKACT_FUZZ_CHECK(!ec2 && back.size() == 1 && back[0].family == e.family && back[0].host == e.host &&
                             back[0].port == e.port,
                         c + "\ncanonical: " + canonical);
    }
  }
  // Without an error, everything that is not a separator was taken.
  if (!ec) {
    std::size_t taken = 0, payload = 0;
    for (const sockact::endpoint& e : eps) taken += e.text.size();
    for (const char ch : input) payload += separator(ch) ? 0 : 1;
    SOCKACT_FUZZ_CHECK(taken == payload, context);
  }

  // quote() on the same bytes: quoted, printable, bounded.
  const std::string q = sockact::detail::quote(input, 60);
  SOCKACT_FUZZ_CHECK(q.size() >= 2 && q.front() == '"' && q.back() == '"', context);
  for (const char ch : q) SOCKACT_FUZZ_CHECK(ch >= 0x20 && ch < 0x7f, context + "\nquoted: " + q);
  SOCKACT_FUZZ_CHECK(q.size() <= 2 + 60 * 4 + 3, context);
  return 0;
}
