// env_integer (runtime/env_knob.h), the tuning knobs' reader: unset gives the fallback, whole decimal integers at
// or above the minimum are taken, anything else (empty, trailing text, whitespace, fractions, below the minimum,
// out of int64's range) throws gsa::Error naming the variable and the value.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "gsa/runtime/env_knob.h"
#include "gsa/runtime/error.h"
#include "common/error_of.h"

namespace gsa {
namespace {

TEST(EnvKnob, EnvIntegerTakesWholeIntegersAndNamesBadValues) {
  const char* name = "GSA_TEST_ENV_KNOB";
  unsetenv(name);
  EXPECT_EQ(env_integer(name, 7, 0), 7);
  setenv(name, "42", 1);
  EXPECT_EQ(env_integer(name, 7, 0), 42);
  setenv(name, "0", 1);
  EXPECT_EQ(env_integer(name, 7, 0), 0);
  for (const char* bad : {"", "x", "12x", " 3 ", "1.5", "-1", "99999999999999999999"}) {
    setenv(name, bad, 1);
    EXPECT_ERROR_MENTIONS(env_integer(name, 7, 0),
                          std::string("GSA_TEST_ENV_KNOB must be an integer of at least 0, got '") + bad + "'");
  }
  setenv(name, "0", 1);
  EXPECT_ERROR_MENTIONS(env_integer(name, 7, 1), "at least 1");
  unsetenv(name);
}

}  // namespace
}  // namespace gsa
