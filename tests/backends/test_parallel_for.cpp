// latte's thread pool: every index is visited once, and an exception thrown in any chunk reaches
// the caller after all chunks ended (a throw must not terminate a pool thread or leave the
// caller while workers still run), with the pool usable afterwards.
#include <atomic>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/parallel.h"
#include "core/error.h"

using namespace latte;
using namespace latte::cpu;

TEST_CASE("parallel_for visits every index exactly once", "[backends][parallel]") {
    for (int64_t n : {1, 2, 7, 1000, 100003}) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
            for (int64_t i = lo; i < hi; ++i) seen[static_cast<size_t>(i)].fetch_add(1);
        });
        for (auto& s : seen) REQUIRE(s.load() == 1);
    }
}

TEST_CASE("an exception in a parallel_for chunk reaches the caller after every chunk ended", "[backends][parallel]") {
    const int64_t n = 4096;
    for (int64_t failing : {int64_t{0}, n - 1}) {  // the caller's chunk, then the last worker's
        std::atomic<int64_t> finished{0};
        try {
            parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
                if (lo <= failing && failing < hi) throw Error("chunk failed at " + std::to_string(failing));
                finished.fetch_add(hi - lo);
            });
            FAIL("parallel_for swallowed the exception");
        } catch (const Error& e) {
            REQUIRE(std::string(e.what()).find("chunk failed at " + std::to_string(failing)) != std::string::npos);
        }
        // The chunks that did not throw ran to their end before the rethrow (none was cut short),
        // so only the failing chunk's indices are missing.
        if (num_threads() > 1) REQUIRE(finished.load() > 0);
        REQUIRE(finished.load() < n);
    }
    // Every chunk throwing: one of the exceptions arrives, not std::terminate.
    REQUIRE_THROWS_AS(parallel_for(n, 1, [](int64_t, int64_t) { throw std::runtime_error("all chunks"); }),
                      std::runtime_error);
    // The pool still runs work.
    std::atomic<int64_t> sum{0};
    parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) sum.fetch_add(i);
    });
    REQUIRE(sum.load() == n * (n - 1) / 2);
}
