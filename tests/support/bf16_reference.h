// References for bf16 products (autocast): rounding written apart from the library's, and a check
// of one row-major product against float64 sums of the same rounded inputs.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/autocast.h"

namespace latte::test {

// Whether this CPU runs autocast(bf16) products; when it does not, the test says that `what` is
// skipped and why.
inline bool cpu_runs_bf16(const std::string& what) {
    std::string why;
    if (autocast::bf16_available(Device::cpu(), &why)) return true;
    WARN(what << " skipped: " << why);
    return false;
}

// x rounded to bf16, nearest with ties to even, from the dropped low half of its bits (written
// apart from cpu::to_bf16).
inline float round_bf16(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const uint32_t low = bits & 0xffffu, high = bits & 0xffff0000u;
    const bool up = low > 0x8000u || (low == 0x8000u && (high & 0x10000u));
    const uint32_t out = up ? high + 0x10000u : high;
    float y;
    std::memcpy(&y, &out, sizeof y);
    return y;
}

struct Bf16GemmCase {
    bool ta, tb;
    int64_t m, n, k, pad;  // pad: how far each leading dimension exceeds its row
    float alpha, beta;
};

// The signature of cpu::gemm_bf16 and cpu::gemm_tile_bf16.
using Bf16Gemm = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);

// Runs one product with random inputs and checks every element of C, and that C's padding is
// untouched. Each product of two bf16 values is exact in float32 (8-bit significands), so the error
// is float32 accumulation over k terms plus the alpha and beta steps: at most (k + 2) u times the
// sum of the magnitudes, u = 2^-24 (the classic bound gamma_n for recursive summation; blocked or
// paired sums, as oneDNN's and latte's kernels use, stay inside it).
inline void check_bf16_gemm(Bf16Gemm gemm, const Bf16GemmCase& t, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const int64_t a_rows = t.ta ? t.k : t.m, a_cols = t.ta ? t.m : t.k, lda = a_cols + t.pad;
    const int64_t b_rows = t.tb ? t.n : t.k, b_cols = t.tb ? t.k : t.n, ldb = b_cols + t.pad;
    const int64_t ldc = t.n + t.pad;
    std::vector<float> a(static_cast<size_t>(a_rows * lda)), b(static_cast<size_t>(b_rows * ldb));
    for (float& v : a) v = dist(rng);
    for (float& v : b) v = dist(rng);
    const float sentinel = 12345.0f;
    std::vector<float> c(static_cast<size_t>(t.m * ldc), sentinel);
    for (int64_t i = 0; i < t.m; ++i)
        for (int64_t j = 0; j < t.n; ++j)
            // beta 0 must ignore C, as BLAS does: NaN there would show.
            c[size_t(i * ldc + j)] = t.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : dist(rng);
    const std::vector<float> c0 = c;
    gemm(t.ta, t.tb, t.m, t.n, t.k, t.alpha, a.data(), lda, b.data(), ldb, t.beta, c.data(), ldc);
    auto at = [](const std::vector<float>& x, int64_t ld, bool trans, int64_t r, int64_t col) {
        return static_cast<double>(round_bf16(trans ? x[size_t(col * ld + r)] : x[size_t(r * ld + col)]));
    };
    const double u = std::ldexp(1.0, -24);
    for (int64_t i = 0; i < t.m; ++i)
        for (int64_t j = 0; j < t.n; ++j) {
            double sum = 0, magnitude = 0;
            for (int64_t p = 0; p < t.k; ++p) {
                const double term = at(a, lda, t.ta, i, p) * at(b, ldb, t.tb, p, j);
                sum += term;
                magnitude += std::fabs(term);
            }
            const double old = t.beta == 0.0f ? 0.0 : c0[size_t(i * ldc + j)];
            const double want = t.alpha * sum + t.beta * old;
            const double tol = (t.k + 2) * u * (std::fabs(t.alpha) * magnitude + std::fabs(t.beta * old)) + 1e-30;
            const double got = c[size_t(i * ldc + j)];
            if (!(std::fabs(got - want) <= tol))
                FAIL("ta " << t.ta << " tb " << t.tb << " m " << t.m << " n " << t.n << " k " << t.k << " pad "
                           << t.pad << " alpha " << t.alpha << " beta " << t.beta << ": C(" << i << ", " << j
                           << ") = " << got << ", want " << want << " within " << tol);
        }
    for (int64_t i = 0; i < t.m; ++i)
        for (int64_t j = t.n; j < ldc; ++j) REQUIRE(c[size_t(i * ldc + j)] == sentinel);
}

// check_bf16_gemm over every transpose pair and every (m, n, k) drawn from `sizes`, cycling alpha
// and beta through (1, 0), (0.75, 0.5), (-2, 1) and the leading dimensions' padding through 0-5.
inline void check_bf16_gemm_sizes(Bf16Gemm gemm, const std::vector<int64_t>& sizes, uint32_t seed) {
    std::mt19937 rng(seed);
    const float scalars[3][2] = {{1.0f, 0.0f}, {0.75f, 0.5f}, {-2.0f, 1.0f}};
    int index = 0;
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (int64_t m : sizes)
                for (int64_t n : sizes)
                    for (int64_t k : sizes) {
                        const float* ab = scalars[index % 3];
                        check_bf16_gemm(gemm, {ta, tb, m, n, k, index % 4 == 0 ? 0 : 1 + index % 5, ab[0], ab[1]}, rng);
                        ++index;
                    }
}

}  // namespace latte::test
