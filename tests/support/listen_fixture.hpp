// A GoogleTest fixture for tests that put fds at the slots (3..) and set
// LISTEN_*. SPDX-License-Identifier: MIT
#ifndef SOCKACT_TESTS_SUPPORT_LISTEN_FIXTURE_HPP
#define SOCKACT_TESTS_SUPPORT_LISTEN_FIXTURE_HPP

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace sockact_test {

/// Each test starts with the slots free and leaves none open and no LISTEN_*
/// variable set.
class listen_fixture : public ::testing::Test {
 protected:
  void SetUp() override { clear_slots_once(); }
  void TearDown() override {
    passed_fds::close_slots();
    for (const char* v : listen_variables) ::unsetenv(v);
  }
};

}  // namespace sockact_test

#endif  // SOCKACT_TESTS_SUPPORT_LISTEN_FIXTURE_HPP
