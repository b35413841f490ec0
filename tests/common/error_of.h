// error_of(fn): the message of the exception of type E (gsa::Error unless named) that fn throws, or "no error"
// when fn returns; EXPECT_ERROR_MENTIONS(call, text): the call throws a gsa::Error whose message holds text.
// For the tests that check bad input is rejected with a message naming the problem.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "gsa/runtime/error.h"

namespace gsa::test_support {

template <typename E = Error, typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace gsa::test_support

#define EXPECT_ERROR_MENTIONS(call, text) \
  EXPECT_NE(::gsa::test_support::error_of([&] { call; }).find(text), std::string::npos) << #call
