#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

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

TEST_CASE("parse_double reads decimal numbers only: no hexadecimal, inf or nan", "[core]") {
    double d = 5;
    for (const char* bad : {"0x10", "0X1p3", "-0x1", "inf", "-inf", "infinity", "nan", "NAN", "1e", ".", "+", "e5", "1e400"}) {
        CAPTURE(bad);
        REQUIRE_FALSE(parse_double(bad, d));
        REQUIRE(d == 5);
    }
    for (const auto& [text, value] : std::vector<std::pair<const char*, double>>{
             {"1e-3", 1e-3}, {"-2.5", -2.5}, {"+0.5", 0.5}, {".25", 0.25}, {"3.", 3.0}, {"1E+2", 100.0}}) {
        CAPTURE(text);
        REQUIRE(parse_double(text, d));
        REQUIRE(d == value);
    }
    int64_t i = 0;
    REQUIRE_FALSE(parse_int("0x10", i));
}

TEST_CASE("env_int reads an environment variable strictly, within its range", "[core]") {
    const char* name = "LATTE_TEST_ENV_INT";
    ::unsetenv(name);
    REQUIRE(env_int(name, 7, 1, 100) == 7);  // unset: the fallback
    ::setenv(name, "42", 1);
    REQUIRE(env_int(name, 7, 1, 100) == 42);
    ::setenv(name, "-3", 1);
    REQUIRE(env_int(name, 7, -5, 100) == -3);
    for (const char* bad : {"3abc", "", " 4", "4 ", "101", "0", "99999999999", "99999999999999999999", "0x10", "1e2"}) {
        CAPTURE(bad);
        ::setenv(name, bad, 1);
        REQUIRE_THROWS_WITH(env_int(name, 7, 1, 100, "things"),
                            "LATTE_TEST_ENV_INT must be an integer from 1 to 100 (things), got '" + std::string(bad) + "'");
    }
    ::setenv(name, "x", 1);
    REQUIRE_THROWS_WITH(env_int(name, 7, 1, 100), "LATTE_TEST_ENV_INT must be an integer from 1 to 100, got 'x'");
    ::unsetenv(name);
}
