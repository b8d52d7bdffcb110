// listen_option: the examples' one command-line option, --listen=ADDRESS[,...]:
// where to listen when the program is started by hand, with no socket passed
// (sockact::activation_config::http(address); empty means HOST/PORT or
// SOCKET_PATH). Given twice, the lists are joined. Anything else on the
// command line, or an empty --listen=, prints what was wrong and the usage,
// and exits 2.
// SPDX-License-Identifier: MIT
#ifndef EXAMPLES_COMMON_LISTEN_OPTION_HPP
#define EXAMPLES_COMMON_LISTEN_OPTION_HPP

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace listen_option {

/// The addresses given with --listen= in argv[1..argc), or exit(2) naming the
/// argument that is not one.
inline std::string from_arguments_or_exit(int argc, char** argv, const char* program) {
  constexpr std::string_view option = "--listen=";
  std::string address;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* why = nullptr;
    if (a.substr(0, option.size()) != option) {
      why = "unknown argument";
    } else if (a.size() == option.size()) {
      why = "--listen= needs an address";
    }
    if (why != nullptr) {
      std::fprintf(stderr, "%s: %s: '%s'\nusage: %s [--listen=ADDRESS[,ADDRESS...]]\n", program, why, argv[i],
                   program);
      std::exit(2);
    }
    if (!address.empty()) address += ',';
    address += a.substr(option.size());
  }
  return address;
}

}  // namespace listen_option

#endif  // EXAMPLES_COMMON_LISTEN_OPTION_HPP
