// systemd's number and list rules, with values checked against libsystemd 252.
#include <sockact/detail/parse.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using sockact::detail::parse_int;
using sockact::detail::parse_pid;
using sockact::detail::parse_u64;
using sockact::detail::split_names;

int pid_of(const char* s, pid_t* out = nullptr) {
  pid_t p = -1;
  const int r = parse_pid(s, p);
  if (out != nullptr) *out = p;
  return r;
}

TEST(ParsePid, AcceptsWhatStrtoullBaseZeroAccepts) {
  pid_t p = 0;
  EXPECT_EQ(pid_of("42", &p), 0);
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("  \t\n\r42", &p), 0);
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("0x2a", &p), 0);
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("052", &p), 0);  // C octal
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("0b101010", &p), 0);  // systemd's Python-style prefixes
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("0o52", &p), 0);
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("+42", &p), 0);
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("\v42", &p), 0);  // strtoull skips \v itself
  EXPECT_EQ(p, 42);
  EXPECT_EQ(pid_of("2147483647", &p), 0);
  EXPECT_EQ(p, 2147483647);
}

TEST(ParsePid, GarbageIsEinval) {
  for (const char* s : {"", " ", "abc", "42 ", "42x", "0x", "4 2", "--1", "0b", "0b2", "089", "\v0b1"})
    EXPECT_EQ(pid_of(s), -EINVAL) << '"' << s << '"';
}

TEST(ParsePid, ZeroNegativeAndOverflowAreErange) {
  for (const char* s : {"0", "-0", "0x0", "-1", "-42", "2147483648", "4294967295", "4294967296",
                        "18446744073709551615", "18446744073709551616", "99999999999999999999999"})
    EXPECT_EQ(pid_of(s), -ERANGE) << '"' << s << '"';
}

TEST(ParseInt, SystemdSafeAtoi) {
  int n = 0;
  EXPECT_EQ(parse_int("3", n), 0);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(parse_int(" -7", n), 0);
  EXPECT_EQ(n, -7);
  EXPECT_EQ(parse_int("0x10", n), 0);
  EXPECT_EQ(n, 16);
  EXPECT_EQ(parse_int("0b-1", n), 0);  // strtol after the prefix takes a sign, as in systemd
  EXPECT_EQ(n, -1);
  EXPECT_EQ(parse_int("2147483648", n), -ERANGE);
  EXPECT_EQ(parse_int("-2147483649", n), -ERANGE);
  EXPECT_EQ(parse_int("99999999999999999999", n), -ERANGE);
  EXPECT_EQ(parse_int("", n), -EINVAL);
  EXPECT_EQ(parse_int("1 ", n), -EINVAL);
  EXPECT_EQ(parse_int("one", n), -EINVAL);
}

TEST(ParseU64, FullRange) {
  std::uint64_t v = 0;
  EXPECT_EQ(parse_u64("18446744073709551615", v), 0);
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_EQ(parse_u64("18446744073709551616", v), -ERANGE);
  EXPECT_EQ(parse_u64("-1", v), -ERANGE);
  EXPECT_EQ(parse_u64("-0", v), 0);
  EXPECT_EQ(v, 0u);
  EXPECT_EQ(parse_u64("x", v), -EINVAL);
}

std::vector<std::string> split(const char* s, int* r = nullptr) {
  std::vector<std::string> out;
  const int n = split_names(s, out);
  if (r != nullptr) *r = n;
  return out;
}

TEST(SplitNames, KeepsEmptyFieldsAndUnescapes) {
  using v = std::vector<std::string>;
  EXPECT_EQ(split(""), v{""});  // one empty name, as libsystemd
  EXPECT_EQ(split(":"), (v{"", ""}));
  EXPECT_EQ(split("x:"), (v{"x", ""}));
  EXPECT_EQ(split("::a"), (v{"", "", "a"}));
  EXPECT_EQ(split("web:admin"), (v{"web", "admin"}));
  EXPECT_EQ(split("a\\:b"), v{"a:b"});
  EXPECT_EQ(split("a\\\\b:c"), (v{"a\\b", "c"}));
  EXPECT_EQ(split("'a:b'"), (v{"'a", "b'"}));  // quotes are not special
  EXPECT_EQ(split("\"a b\""), v{"\"a b\""});
}

TEST(SplitNames, TrailingBackslashIsEinval) {
  int r = 0;
  EXPECT_TRUE(split("a\\", &r).empty());
  EXPECT_EQ(r, -EINVAL);
  split("a:b:\\", &r);
  EXPECT_EQ(r, -EINVAL);
}

}  // namespace
