// See odr_a.cpp.
#include <sockact/idle.hpp>
#include <sockact/lifecycle.hpp>
#include <sockact/notify.hpp>
#include <sockact/sockact.hpp>

#include <gtest/gtest.h>

int sockact_odr_a();

TEST(Odr, BothTranslationUnitsLink) {
  EXPECT_EQ(sockact_odr_a(), sockact::listen_fds_start);
}
