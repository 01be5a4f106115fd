// OpenBLAS (Debian's LP64 build) and cuBLAS's classic API take sizes as 32-bit ints. A size,
// leading dimension or batch count past 2^31 - 1 used to be cast and wrap, to a negative value
// (OpenBLAS rejected the call with a note on stderr and wrote nothing) or to a small positive one
// (2^32 + 5 rows became 5): either way a silent wrong result. Such a gemm is now refused before
// any BLAS call (these cases pass null data, which BLAS never sees).
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/blas.h"
#include "core/backend.h"
#include "core/error.h"

using namespace latte;

namespace {
constexpr int64_t kPast = int64_t{1} << 31;  // 2^31, one past the largest int32
}

TEST_CASE("check_blas_gemm refuses every size past 2^31 - 1 and names it", "[backends][blas]") {
    const int64_t ok = kPast - 1;
    REQUIRE_NOTHROW(check_blas_gemm("t", false, false, ok, ok, ok, ok, ok, ok, ok));
    for (int which = 0; which < 7; ++which) {
        int64_t v[7] = {4, 5, 6, 6, 5, 5, 3};
        v[which] = kPast;
        try {
            check_blas_gemm("matmul (test)", false, false, v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
            FAIL("size " << which << " at 2^31 was accepted");
        } catch (const Error& e) {
            const std::string msg = e.what();
            REQUIRE(msg.find("matmul (test)") != std::string::npos);
            REQUIRE(msg.find(std::to_string(kPast)) != std::string::npos);
        }
    }
}

TEST_CASE("the CPU gemm refuses sizes that 32-bit BLAS would wrap", "[backends][blas]") {
    REQUIRE_THROWS_AS(cpu::gemm_tile<float>(false, false, kPast, 1, 1, 1.0f, nullptr, 1, nullptr, 1, 0.0f, nullptr, 1),
                      Error);
    REQUIRE_THROWS_AS(cpu::gemm_tile<double>(false, true, 1, 1, 1, 1.0, nullptr, kPast, nullptr, 1, 0.0, nullptr, 1),
                      Error);
    // Through the backend: 2^32 rows are split over the pool's threads (chunks of 2^31 or more
    // on 2 threads), and the refusal comes back from whichever chunk holds it.
    GemmArgs g;
    g.m = int64_t{1} << 32;
    g.n = 1;
    g.k = 1;
    g.lda = g.ldb = g.ldc = 1;
    g.a_offsets = g.b_offsets = g.c_offsets = {0};
    REQUIRE_THROWS_AS(cpu_backend().gemm(g), Error);
}

TEST_CASE("a gemm whose leading dimension is below its rows' length is refused, not skipped", "[backends][blas]") {
    // OpenBLAS skips such a call with a note on stderr and leaves C as it was.
    std::vector<double> a(6, 1.0), b(6, 1.0), c(4, -7.0);
    REQUIRE_THROWS_WITH(cpu::gemm_tile<double>(false, false, 2, 2, 3, 1.0, a.data(), 0, b.data(), 2, 0.0, c.data(), 2),
                        Catch::Contains("leading dimensions 0, 2, 2") && Catch::Contains("below the rows' lengths 3, 2, 2"));
    REQUIRE_THROWS_AS(cpu::gemm_tile<double>(false, true, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2),
                      Error);  // B transposed is stored (n x k): ldb must be at least k = 3
    REQUIRE_NOTHROW(cpu::gemm_tile<double>(false, true, 2, 2, 3, 1.0, a.data(), 3, b.data(), 3, 0.0, c.data(), 2));
    REQUIRE(c == std::vector<double>(4, 3.0));
}
