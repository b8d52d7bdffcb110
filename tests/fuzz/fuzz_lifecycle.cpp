// SPDX-License-Identifier: MIT
// libFuzzer target: IDLE_TIMEOUT / SHUTDOWN_TIMEOUT, through
// detail::parse_seconds() and lifecycle_from_environment().
//
// Input: byte 0 bit 0 sets IDLE_TIMEOUT, bit 1 SHUTDOWN_TIMEOUT; the rest is
// cut at a NUL byte into their values. parse_seconds() also gets the whole
// rest, NULs included.
#include <sockact/idle.hpp>  // first: the header must be self-contained

#include "fuzz_support.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using sockact_fuzz::show;
using ms = std::chrono::milliseconds;

namespace {

constexpr std::int64_t year_ms = 366LL * 24 * 3600 * 1000;

// An independent reading of the documented grammar: DIGITS [ "." DIGITS ],
// milliseconds rounded up (a nonzero digit past the third makes one more),
// whole seconds at most 366 days.
std::optional<std::int64_t> reference(std::string_view s) {
  std::size_t i = 0;
  std::int64_t whole = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    whole = whole * 10 + (s[i] - '0');
    if (whole > year_ms / 1000) return std::nullopt;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    const std::size_t start = ++i;
    int kept = 0;
    bool beyond = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (kept < 3) {
        frac = frac * 10 + (s[i] - '0');
        ++kept;
      } else if (s[i] != '0') {
        beyond = true;
      }
      ++i;
    }
    if (i == start) return std::nullopt;
    for (; kept < 3; ++kept) frac *= 10;
    if (beyond) ++frac;
  }
  if (i != s.size()) return std::nullopt;
  return whole * 1000 + frac;
}

std::string format(ms v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(v.count() / 1000),
                static_cast<long long>(v.count() % 1000));
  return buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string context = "input: " + show(rest);

  // parse_seconds on the raw bytes, against the reference.
  ms parsed{-1};
  const bool accepted = sockact::detail::parse_seconds(rest, parsed);
  const std::optional<std::int64_t> expected = reference(rest);
  SOCKACT_FUZZ_CHECK(accepted == expected.has_value(), context);
  if (accepted) {
    SOCKACT_FUZZ_CHECK(parsed.count() == *expected, context + "\ngot " + std::to_string(parsed.count()));
    SOCKACT_FUZZ_CHECK(parsed.count() >= 0 && parsed.count() <= year_ms + 1000, context);
    // Written back as S.mmm and as whole seconds (when whole), it reads the same
    // (unless rounding up carried it past the whole-seconds limit).
    ms again{-1};
    const bool within = parsed.count() / 1000 <= year_ms / 1000;
    if (within)
      SOCKACT_FUZZ_CHECK(sockact::detail::parse_seconds(format(parsed), again) && again == parsed,
                         context + "\nformatted: " + format(parsed));
    if (within && parsed.count() % 1000 == 0)
      SOCKACT_FUZZ_CHECK(
          sockact::detail::parse_seconds(std::to_string(parsed.count() / 1000), again) && again == parsed,
          context);
  } else {
    SOCKACT_FUZZ_CHECK(parsed == ms{-1}, context);  // untouched on failure
  }

  // The environment form.
  const std::vector<std::string> fields = sockact_fuzz::split_fields(data + 1, size - 1, 2);
  const char* const names[] = {"IDLE_TIMEOUT", "SHUTDOWN_TIMEOUT"};
  std::optional<std::string> values[2];
  sockact_fuzz::put_env_fields(names, values, data[0], fields);
  const std::string env_context = sockact_fuzz::show_env(names, values);
  sockact::lifecycle_config config;
  const sockact::lifecycle_config defaults;
  std::error_code ec;
  std::string why;
  const bool ok = sockact::lifecycle_from_environment(config, ec, &why);
  SOCKACT_FUZZ_CHECK(ok == !ec, env_context);

  const char* first_bad = nullptr;
  std::optional<std::int64_t> want[2];
  for (std::size_t i = 0; i < 2 && first_bad == nullptr; ++i) {
    if (!values[i]) continue;
    want[i] = reference(*values[i]);
    if (!want[i]) first_bad = names[i];
  }
  if (first_bad != nullptr) {
    SOCKACT_FUZZ_CHECK(!ok && ec == std::errc::invalid_argument, env_context);
    SOCKACT_FUZZ_CHECK(why.rfind(std::string(first_bad) + "=\"", 0) == 0, env_context + "\nwhy: " + why);
  } else {
    SOCKACT_FUZZ_CHECK(ok && why.empty(), env_context);
    SOCKACT_FUZZ_CHECK(config.idle_timeout == (want[0] ? ms(*want[0]) : defaults.idle_timeout), env_context);
    SOCKACT_FUZZ_CHECK(config.shutdown_timeout == (want[1] ? ms(*want[1]) : defaults.shutdown_timeout),
                       env_context);
  }
  SOCKACT_FUZZ_CHECK(config.new_connection_grace == defaults.new_connection_grace, env_context);

  try {
    const sockact::lifecycle_config thrown = sockact::lifecycle_from_environment();
    SOCKACT_FUZZ_CHECK(ok && thrown.idle_timeout == config.idle_timeout &&
                           thrown.shutdown_timeout == config.shutdown_timeout,
                       env_context);
  } catch (const std::system_error& e) {
    SOCKACT_FUZZ_CHECK(!ok && std::string(e.what()).find(first_bad) != std::string::npos,
                       env_context + "\nwhat: " + e.what());
  }
  for (const char* name : names) ::unsetenv(name);
  return 0;
}
