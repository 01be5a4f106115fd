#include <catch2/catch.hpp>

#include "core/parse.h"

using namespace latte;

TEST_CASE("parse_int and parse_double take the whole text or nothing", "[core]") {
    int64_t i = 7;
    REQUIRE(parse_int("-42", i));
    REQUIRE(i == -42);
    for (const char* bad : {"", "4x", "x4", "1.5", "99999999999999999999"}) {
        CAPTURE(bad);
        REQUIRE_FALSE(parse_int(bad, i));
        REQUIRE(i == -42);  // untouched on failure
    }
    double d = 0;
    REQUIRE(parse_double("3e-3", d));
    REQUIRE(d == 3e-3);
    REQUIRE_FALSE(parse_double("0.1.2", d));
    REQUIRE_FALSE(parse_double("", d));
    REQUIRE(d == 3e-3);
}
