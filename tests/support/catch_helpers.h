// Catch2 assertions over latte tensors.
#pragma once
#include <catch2/catch.hpp>

#include "ops/gradcheck.h"
#include "tests/support/compare.h"

#define LATTE_REQUIRE_CLOSE(actual, expected, rtol, atol)                               \
    do {                                                                                \
        const auto latte_cmp_ = ::latte::allclose((actual), (expected), (rtol), (atol), #actual); \
        INFO(latte_cmp_.message);                                                       \
        REQUIRE(latte_cmp_.ok);                                                         \
    } while (0)

// LATTE_REQUIRE_GRADCHECK(fn, inputs[, options]): inputs may be a braced list.
#define LATTE_REQUIRE_GRADCHECK(fn, ...)                                                \
    do {                                                                                \
        const auto latte_gc_ = ::latte::gradcheck((fn), __VA_ARGS__);                   \
        INFO(latte_gc_.message);                                                        \
        REQUIRE(latte_gc_.ok);                                                          \
    } while (0)
