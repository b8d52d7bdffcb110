// idle_tracker and the IDLE_TIMEOUT/SHUTDOWN_TIMEOUT parser. Time is passed in
// explicitly: no test here sleeps or depends on the machine's speed.
#include <sockact/idle.hpp>

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <thread>

namespace {

using namespace std::chrono_literals;
using sockact::idle_tracker;
using tp = idle_tracker::clock::time_point;

TEST(IdleTracker, OffByDefault) {
  idle_tracker t;
  EXPECT_FALSE(t.enabled());
  EXPECT_FALSE(t.check(tp{} + 1000h));
  EXPECT_EQ(t.next_check(), tp::max());
}

TEST(IdleTracker, ArmedAtStartWithoutAnyActivity) {
  const tp t0{};
  idle_tracker t(2s, t0);
  EXPECT_FALSE(t.check(t0 + 1999ms));
  EXPECT_TRUE(t.check(t0 + 2s)) << "exits even if no request ever came";
  EXPECT_EQ(t.next_check(t0), t0 + 2s);
}

TEST(IdleTracker, ActivityRestartsThePeriodAndBlocksWhileActive) {
  const tp t0{};
  idle_tracker t(2s, t0);
  {
    const auto a = t.begin();
    EXPECT_EQ(t.active(), 1u);
    EXPECT_FALSE(t.check(t0 + 1s));
    EXPECT_FALSE(t.check(t0 + 10s)) << "a request longer than the timeout is not cut";
    EXPECT_EQ(t.next_check(t0 + 10s), t0 + 10s + t.check_interval());
    EXPECT_EQ(t.next_check(t0 + 10s + 50ms), t0 + 10s + t.check_interval())
        << "stable: the loop can wait for it";
  }
  EXPECT_EQ(t.active(), 0u);
  EXPECT_FALSE(t.check(t0 + 11s)) << "the end was seen now: the idle period starts here";
  EXPECT_FALSE(t.check(t0 + 12s));
  EXPECT_TRUE(t.check(t0 + 13s));
}

TEST(IdleTracker, ShortActivityBetweenChecksIsSeen) {
  const tp t0{};
  idle_tracker t(1s, t0);
  EXPECT_FALSE(t.check(t0 + 900ms));
  { const auto a = t.begin(); }  // begins and ends between two checks
  EXPECT_FALSE(t.check(t0 + 1100ms)) << "count is back to 0, but the generation moved";
  EXPECT_FALSE(t.check(t0 + 2000ms));
  EXPECT_TRUE(t.check(t0 + 2100ms));
}

TEST(IdleTracker, GuardsMoveAndEndOnce) {
  idle_tracker t(1s);
  auto a = t.begin();
  auto b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(t.active(), 1u);
  a = t.begin();
  EXPECT_EQ(t.active(), 2u);
  a = std::move(b);  // ends the second one
  EXPECT_EQ(t.active(), 1u);
  a.end();
  a.end();
  EXPECT_EQ(t.active(), 0u);
}

TEST(IdleTracker, RestartAfterBacklogFound) {
  const tp t0{};
  idle_tracker t(1s, t0);
  EXPECT_TRUE(t.check(t0 + 1s));
  t.restart(t0 + 1s);
  EXPECT_FALSE(t.check(t0 + 1500ms));
  EXPECT_TRUE(t.check(t0 + 2s));
}

TEST(IdleTracker, ManyThreads) {
  idle_tracker t(1s);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&t] {
      for (int j = 0; j < 100000; ++j) {
        const auto a = t.begin();
        const auto b = t.begin();
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(t.active(), 0u);
}

TEST(IdleTracker, CheckIntervalIsBounded) {
  EXPECT_EQ(idle_tracker(50ms).check_interval(), 10ms);
  EXPECT_EQ(idle_tracker(2s).check_interval(), 200ms);
  EXPECT_EQ(idle_tracker(3600s).check_interval(), 1s);
}

TEST(ConnectionWaiting, SeesTheBacklog) {
  const sockact_test::owned_fd l = sockact_test::inet_socket(AF_INET, SOCK_STREAM);
  EXPECT_FALSE(sockact::connection_waiting({l.get()}));
  const sockact_test::owned_fd c(sockact_test::connect_loopback(sockact_test::local_port(l.get())));
  ASSERT_GE(c.get(), 0);
  EXPECT_TRUE(sockact::connection_waiting({l.get()}));
  EXPECT_FALSE(sockact::connection_waiting({}));
}

class LifecycleEnv : public ::testing::Test {
 protected:
  void TearDown() override {
    ::unsetenv("IDLE_TIMEOUT");
    ::unsetenv("SHUTDOWN_TIMEOUT");
  }
};

TEST_F(LifecycleEnv, DefaultsAndValues) {
  sockact::lifecycle_config c;
  std::error_code ec;
  ASSERT_TRUE(sockact::lifecycle_from_environment(c, ec));
  EXPECT_EQ(c.idle_timeout, 0ms);
  EXPECT_EQ(c.shutdown_timeout, 30s);
  ::setenv("IDLE_TIMEOUT", "2.5", 1);
  ::setenv("SHUTDOWN_TIMEOUT", "0", 1);
  ASSERT_TRUE(sockact::lifecycle_from_environment(c, ec));
  EXPECT_EQ(c.idle_timeout, 2500ms);
  EXPECT_EQ(c.shutdown_timeout, 0ms);
  ::setenv("IDLE_TIMEOUT", "0.001", 1);
  ASSERT_TRUE(sockact::lifecycle_from_environment(c, ec));
  EXPECT_EQ(c.idle_timeout, 1ms);
}

// Under a millisecond rounds up: truncated to 0 it would mean "off" (a
// HEADERS_TIMEOUT that never cuts, an IDLE_TIMEOUT that never exits).
TEST_F(LifecycleEnv, FractionsOfAMillisecondRoundUp) {
  const std::pair<const char*, std::chrono::milliseconds> cases[] = {
      {"0.0009", 1ms}, {"0.0001", 1ms},      {"1.0005", 1001ms},
      {"0.0000", 0ms}, {"0.000000001", 1ms}, {"2.50", 2500ms},
  };
  for (const auto& [text, want] : cases) {
    ::setenv("IDLE_TIMEOUT", text, 1);
    ::setenv("SEND_TIMEOUT", text, 1);
    sockact::lifecycle_config c;
    std::error_code ec;
    ASSERT_TRUE(sockact::lifecycle_from_environment(c, ec)) << text;
    EXPECT_EQ(c.idle_timeout, want) << text;
    EXPECT_EQ(c.send_timeout, want) << text;
  }
  ::unsetenv("SEND_TIMEOUT");
}

TEST_F(LifecycleEnv, SendTimeout) {
  sockact::lifecycle_config c;
  EXPECT_EQ(c.send_timeout, 30s) << "the default";
  ::setenv("SEND_TIMEOUT", "soon", 1);
  std::error_code ec;
  std::string why;
  EXPECT_FALSE(sockact::lifecycle_from_environment(c, ec, &why));
  EXPECT_EQ(why.rfind("SEND_TIMEOUT=\"soon\" is not a number of seconds", 0), 0u) << why;
  ::setenv("SEND_TIMEOUT", "0", 1);
  ASSERT_TRUE(sockact::lifecycle_from_environment(c, ec));
  EXPECT_EQ(c.send_timeout, 0ms) << "0: no limit";
  ::unsetenv("SEND_TIMEOUT");
}

TEST_F(LifecycleEnv, BadValuesNameTheVariable) {
  for (const char* bad : {"-5", "abc", "5s", " 5", "5 ", "", "1e3", "0x10", ".5", "5.",
                          "99999999999999999999", "31622401", "+3", "NaN"}) {
    ::setenv("IDLE_TIMEOUT", bad, 1);
    sockact::lifecycle_config c;
    std::error_code ec;
    std::string why;
    EXPECT_FALSE(sockact::lifecycle_from_environment(c, ec, &why)) << bad;
    EXPECT_EQ(ec, std::errc::invalid_argument);
    EXPECT_EQ(why.rfind("IDLE_TIMEOUT=\"", 0), 0u) << why;
    EXPECT_THROW(sockact::lifecycle_from_environment(), std::system_error);
  }
  ::setenv("IDLE_TIMEOUT", "7", 1);
  ::setenv("SHUTDOWN_TIMEOUT", "-1", 1);
  sockact::lifecycle_config c;
  std::error_code ec;
  std::string why;
  EXPECT_FALSE(sockact::lifecycle_from_environment(c, ec, &why));
  EXPECT_NE(why.find("SHUTDOWN_TIMEOUT=\"-1\""), std::string::npos);
  EXPECT_EQ(c.idle_timeout, 0ms) << "nothing is changed when one value is bad";
}

}  // namespace
