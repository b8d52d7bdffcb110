// listen_or_bind() and the address grammar: real binds on loopback, real
// inherited fds at 3.., and the refusal to bind when activation is broken.
#include <sockact/listen.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <string>

namespace {

using namespace sockact_test;
using sockact::endpoint;

std::vector<endpoint> parse(const char* s, std::string* why = nullptr) {
  std::error_code ec;
  std::vector<endpoint> out = sockact::parse_endpoints(s, ec, why);
  if (ec) {
    EXPECT_EQ(ec, sockact::errc::bad_address);
  }
  return out;
}

TEST(ParseEndpoints, Grammar) {
  const auto e =
      parse("127.0.0.1:8080, [::1]:80 /run/app.sock @abstract sd-listen sd-listen:web 9000 ./rel.sock");
  ASSERT_EQ(e.size(), 8u);
  EXPECT_EQ(e[0].type, endpoint::kind::inet);
  EXPECT_EQ(e[0].family, AF_INET);
  EXPECT_EQ(e[0].host, "127.0.0.1");
  EXPECT_EQ(e[0].port, 8080);
  EXPECT_EQ(e[1].family, AF_INET6);
  EXPECT_EQ(e[1].host, "::1");
  EXPECT_EQ(e[2].type, endpoint::kind::unix_path);
  EXPECT_EQ(e[2].path, "/run/app.sock");
  EXPECT_EQ(e[3].type, endpoint::kind::unix_abstract);
  EXPECT_EQ(e[3].path, "abstract");
  EXPECT_EQ(e[4].type, endpoint::kind::activated);
  EXPECT_EQ(e[4].name, "");
  EXPECT_EQ(e[5].name, "web");
  EXPECT_EQ(e[6].host, "0.0.0.0");
  EXPECT_EQ(e[6].port, 9000);
  EXPECT_EQ(e[7].path, "./rel.sock");
  EXPECT_EQ(parse("sd-listen:*")[0].name, "");
  EXPECT_TRUE(parse("").empty());
  EXPECT_TRUE(parse(" , ").empty());
}

TEST(ParseEndpoints, ErrorsQuoteTheInput) {
  const std::pair<const char*, const char*> bad[] = {
      {"127.0.0.1:99999", "bad address \"127.0.0.1:99999\": port \"99999\" is not a number from 0 to 65535"},
      {"localhost:80", "\"localhost\" is not an IPv4 address"},
      {"::1:80", "an IPv6 address needs brackets"},
      {"[::1]80", "expected [IPv6]:PORT"},
      {"[::g]:80", "\"::g\" is not an IPv6 address"},
      {"1.2.3.4:", "port \"\" is not a number"},
      {"1.2.3.4:-1", "port \"-1\""},
      {"@", "abstract socket name must be"},
      {"web", "bad address \"web\""},
  };
  for (const auto& [input, text] : bad) {
    std::string why;
    std::error_code ec;
    EXPECT_TRUE(sockact::parse_endpoints(input, ec, &why).empty()) << input;
    EXPECT_EQ(ec, sockact::errc::bad_address) << input;
    EXPECT_NE(why.find(text), std::string::npos) << input << " -> " << why;
  }
  std::string why;
  std::error_code ec;
  sockact::parse_endpoints("/" + std::string(200, 'x'), ec, &why);
  EXPECT_NE(why.find("limit is 107"), std::string::npos) << why;
  EXPECT_THROW(sockact::parse_endpoints("nope"), std::system_error);
  using namespace std::string_literals;
  for (const std::string& nul : {"[::\0junk]:8080"s, "127.0.0.1\0x:80"s, "/tmp/a\0b"s, "@a\0b"s}) {
    sockact::parse_endpoints(nul, ec, &why);
    EXPECT_EQ(ec, sockact::errc::bad_address) << "a NUL would cut the address short";
    EXPECT_NE(why.find("contains a NUL byte"), std::string::npos) << why;
  }
}

class ListenOrBind : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_slots_once();
    for (const char* v : {"HOST", "PORT", "SOCKET_PATH"}) ::unsetenv(v);
  }
  void TearDown() override {
    passed_fds::close_slots();
    for (const char* v : listen_variables) ::unsetenv(v);
    for (const char* v : {"HOST", "PORT", "SOCKET_PATH"}) ::unsetenv(v);
  }
  static std::vector<sockact::server_socket> run(const sockact::listen_config& c, std::error_code& ec,
                                                 std::string& why) {
    return sockact::listen_or_bind(c, ec, &why);
  }
  static std::string temp_dir() {
    char tmpl[] = "/tmp/sockact-listen-XXXXXX";
    return ::mkdtemp(tmpl);
  }
};

TEST_F(ListenOrBind, BindsEveryKindWhenNotActivated) {
  const std::string dir = temp_dir();
  sockact::listen_config c;
  c.address = "127.0.0.1:0,[::1]:0," + dir + "/s.sock,@sockact-test-" + std::to_string(::getpid());
  c.unix_mode = 0600;
  std::error_code ec;
  std::string why;
  const auto ls = run(c, ec, why);
  ASSERT_FALSE(ec) << why;
  ASSERT_EQ(ls.size(), 4u);
  for (const auto& l : ls) {
    EXPECT_FALSE(l.activated);
    EXPECT_TRUE(l.info.listening) << l.info.to_string();
    EXPECT_TRUE(l.info.nonblocking);
    EXPECT_TRUE(l.info.cloexec);
  }
  EXPECT_EQ(ls[0].info.family, AF_INET);
  EXPECT_EQ(ls[1].info.family, AF_INET6);
  EXPECT_EQ(ls[2].info.local_address, dir + "/s.sock");
  EXPECT_EQ(ls[2].name, dir + "/s.sock");
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/s.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ls[3].info.local_address, "@sockact-test-" + std::to_string(::getpid()));
  ::unlink((dir + "/s.sock").c_str());
  ::rmdir(dir.c_str());
}

TEST_F(ListenOrBind, EnvironmentDefaultsAsAdapterNode) {
  ::setenv("HOST", "127.0.0.1", 1);
  ::setenv("PORT", "0", 1);
  sockact::listen_config c;
  std::error_code ec;
  std::string why;
  auto ls = run(c, ec, why);
  ASSERT_EQ(ls.size(), 1u) << why;
  EXPECT_EQ(ls[0].info.local_address.rfind("127.0.0.1:", 0), 0u);
  ::setenv("HOST", "::1", 1);
  ls = run(c, ec, why);
  ASSERT_EQ(ls.size(), 1u) << why;
  EXPECT_EQ(ls[0].info.family, AF_INET6);

  ::setenv("PORT", "80a", 1);
  EXPECT_TRUE(run(c, ec, why).empty());
  EXPECT_EQ(ec, sockact::errc::bad_address);
  EXPECT_EQ(why, "PORT=\"80a\" is not a number from 0 to 65535");
  ::setenv("PORT", "0", 1);
  ::setenv("HOST", "example.com", 1);
  EXPECT_TRUE(run(c, ec, why).empty());
  EXPECT_EQ(why, "HOST=\"example.com\" is not an IP address");
  for (const char* host : {"/tmp/sockact-host", "@abstract", "sd-listen", "./x"}) {
    ::setenv("HOST", host, 1);
    EXPECT_TRUE(run(c, ec, why).empty()) << host << " must not become a unix socket";
    EXPECT_EQ(why, "HOST=\"" + std::string(host) + "\" is not an IP address");
  }

  const std::string dir = temp_dir();
  ::setenv("SOCKET_PATH", (dir + "/env.sock").c_str(), 1);  // wins over HOST/PORT
  ls = run(c, ec, why);
  ASSERT_EQ(ls.size(), 1u) << why;
  EXPECT_EQ(ls[0].info.family, AF_UNIX);
  ls.clear();
  ::unlink((dir + "/env.sock").c_str());
  ::rmdir(dir.c_str());
}

TEST_F(ListenOrBind, StaleUnixSocketIsReplacedLiveOneAndFilesAreNot) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/s.sock";
  sockact::listen_config c;
  c.address = path;
  std::error_code ec;
  std::string why;
  { owned_fd stale = unix_socket(path); }  // closed: the file stays, nobody listens
  auto ls = run(c, ec, why);
  ASSERT_EQ(ls.size(), 1u) << why;

  const auto second = run(c, ec, why);  // ls[0] still listens
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(ec, std::errc::address_in_use);
  EXPECT_NE(why.find("another process is listening on it"), std::string::npos) << why;
  ls.clear();
  ::unlink(path.c_str());

  const owned_fd file(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  EXPECT_TRUE(run(c, ec, why).empty());
  EXPECT_NE(why.find("not a socket; not removed"), std::string::npos) << why;
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << "a regular file is never removed";
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST_F(ListenOrBind, TakesActivatedSocketsAndBindsNothing) {
  const owned_fd web = inet_socket(AF_INET, SOCK_STREAM);
  const owned_fd admin = inet_socket(AF_INET6, SOCK_STREAM);
  const passed_fds passed({web.get(), admin.get()});
  const listen_env env(listen_env::self(), "2", "web:admin");
  sockact::listen_config c;
  c.address = "127.0.0.1:1";  // only when not activated
  std::error_code ec;
  std::string why;
  auto ls = run(c, ec, why);
  ASSERT_EQ(ls.size(), 2u) << why;
  EXPECT_TRUE(ls[0].activated);
  EXPECT_EQ(ls[0].fd.get(), 3);
  EXPECT_EQ(ls[0].name, "web");
  EXPECT_EQ(ls[1].name, "admin");
  EXPECT_TRUE(ls[1].info.nonblocking) << "made non-blocking for the event loop";
  EXPECT_FALSE(listen_env::any_set()) << "unset by default, so children do not take them";
  for (auto& l : ls) l.fd.release();  // the slots are closed by passed_fds
}

TEST_F(ListenOrBind, SelectsByName) {
  const owned_fd web = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({web.get(), web.get()});
  sockact::listen_config c;
  std::error_code ec;
  std::string why;
  {
    const listen_env env(listen_env::self(), "2", "web:admin");
    c.address = "sd-listen:admin, 127.0.0.1:0";
    auto ls = run(c, ec, why);
    ASSERT_EQ(ls.size(), 1u) << why;
    EXPECT_EQ(ls[0].fd.get(), 4);
    ls[0].fd.release();
    EXPECT_TRUE(is_open(3)) << "fds not asked for stay open";
  }
  {
    const listen_env env(listen_env::self(), "2", "web:admin");
    c.address = "sd-listen:metrics";
    EXPECT_TRUE(run(c, ec, why).empty());
    EXPECT_EQ(ec, sockact::errc::name_not_found);
    EXPECT_NE(why.find("passed: \"web\", \"admin\""), std::string::npos) << why;
  }
  {
    c.address = "sd-listen";  // not activated
    EXPECT_TRUE(run(c, ec, why).empty());
    EXPECT_EQ(ec, sockact::errc::not_activated);
  }
}

TEST_F(ListenOrBind, UnusableActivationNeverBinds) {
  const owned_fd web = inet_socket(AF_INET, SOCK_STREAM);
  const passed_fds passed({web.get()});
  sockact::listen_config c;
  c.address = "127.0.0.1:0";
  std::error_code ec;
  std::string why;
  const std::pair<std::optional<std::string>, const char*> cases[] = {
      {std::string("1"), "meant for process 1"},
      {std::string("garbage"), "LISTEN_PID=\"garbage\" is not a valid process id"},
  };
  for (const auto& [pid, text] : cases) {
    const listen_env env(pid, "1");
    EXPECT_TRUE(run(c, ec, why).empty());
    EXPECT_EQ(ec, sockact::errc::activation_unusable);
    EXPECT_NE(why.find(text), std::string::npos) << why;
    EXPECT_NE(why.find("refusing to bind"), std::string::npos) << why;
  }
  {
    const listen_env env(listen_env::self(), "2");  // fd 4 is closed
    EXPECT_TRUE(run(c, ec, why).empty());
    EXPECT_NE(why.find("fd 4 is not open"), std::string::npos) << why;
    EXPECT_FALSE(has_cloexec(3)) << "nothing was taken";
  }
  {
    const listen_env env(std::nullopt, "1");
    EXPECT_TRUE(run(c, ec, why).empty());
    EXPECT_NE(why.find("LISTEN_PID is not"), std::string::npos) << why;
  }
  c.activation.pid_check = sockact::listen_pid_check::allow_any;
  {
    const listen_env env("1", "1");
    auto ls = run(c, ec, why);
    ASSERT_EQ(ls.size(), 1u) << "opt-in: served";
    ls[0].fd.release();
  }
}

TEST_F(ListenOrBind, NonSocketIsRefusedAndLeftOpen) {
  const owned_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const passed_fds passed({null.get()});
  const listen_env env(listen_env::self(), "1");
  sockact::listen_config c;
  std::error_code ec;
  std::string why;
  EXPECT_TRUE(run(c, ec, why).empty());
  EXPECT_EQ(ec, sockact::errc::not_a_socket);
  EXPECT_NE(why.find("fd 3 (\"unknown\") is a character device"), std::string::npos) << why;
  EXPECT_TRUE(is_open(3));
}

TEST_F(ListenOrBind, ThrowingFormCarriesTheMessage) {
  sockact::listen_config c;
  c.address = "300.1.1.1:80";
  try {
    sockact::listen_or_bind(c);
    ADD_FAILURE() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("\"300.1.1.1\" is not an IPv4 address"), std::string::npos)
        << e.what();
  }
}

}  // namespace
