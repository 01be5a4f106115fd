// gemm_tile_bf16 (backends/cpu/bf16_tile.h), the single-threaded bf16 tile product of the fused
// attention under autocast(bf16), against a float64 product of the same bf16-rounded inputs: the
// only differences left are float32's rounding while accumulating. The AVX512_BF16 kernel is
// skipped with a message on a CPU without it; the portable path (round, then the float32 tile
// product) is checked everywhere.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/bf16_tile.h"
#include "backends/cpu/cpu_features.h"
#include "core/error.h"
#include "tests/support/bf16_reference.h"

using namespace latte;

namespace {

bool skip_without_avx512_bf16() {
    if (cpu::cpu_features().avx512_bf16) return false;
    WARN("the AVX512_BF16 tile kernel is skipped: this CPU (" << cpu::cpu_features().model
                                                             << ") has no AVX512_BF16");
    return true;
}

// Sets the portable path for the scope of one check.
struct Portable {
    explicit Portable(bool on) { cpu::detail::force_portable_bf16_tile_for_testing(on); }
    ~Portable() { cpu::detail::force_portable_bf16_tile_for_testing(false); }
};

}  // namespace

TEST_CASE("gemm_tile_bf16 matches a float64 product of the bf16-rounded inputs", "[bf16]") {
    if (skip_without_avx512_bf16()) return;
    test::check_bf16_gemm_sizes(cpu::gemm_tile_bf16, {1, 3, 17, 33, 64, 130}, 21);
}

TEST_CASE("gemm_tile_bf16 on attention's tile shapes, with row strides of a heads layout", "[bf16]") {
    if (skip_without_avx512_bf16()) return;
    std::mt19937 rng(5);
    // (rows, keys, head width) as the fused kernel multiplies them, the K/V rows 4 heads apart.
    for (int64_t d : {32, 64, 128}) {
        const int64_t rows = 128, cols = 512, pad = 3 * d;
        test::check_bf16_gemm(cpu::gemm_tile_bf16, {false, true, rows, cols, d, pad, 1.0f, 0.0f}, rng);   // S = Q K^T
        test::check_bf16_gemm(cpu::gemm_tile_bf16, {false, false, rows, d, cols, pad, 1.0f, 1.0f}, rng);  // acc += P V
        test::check_bf16_gemm(cpu::gemm_tile_bf16, {true, false, cols, d, rows, pad, 1.0f, 1.0f}, rng);   // dV += P^T dO, dK += dS^T Q
    }
}

TEST_CASE("gemm_tile_bf16 across its cache blocks: k past 1024 (the last block one long), rows past 128", "[bf16]") {
    if (skip_without_avx512_bf16()) return;
    std::mt19937 rng(23);
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            // beta 0 must ignore C (NaN there), and later blocks of k add to what the first wrote
            test::check_bf16_gemm(cpu::gemm_tile_bf16, {ta, tb, 9, 33, 2049, 1, 1.0f, 0.0f}, rng);
            test::check_bf16_gemm(cpu::gemm_tile_bf16, {ta, tb, 137, 40, 1030, 0, 0.5f, 1.0f}, rng);
        }
}

TEST_CASE("gemm_tile_bf16's portable path gives the same products", "[bf16]") {
    Portable portable(true);
    test::check_bf16_gemm_sizes(cpu::gemm_tile_bf16, {1, 3, 17, 33, 64, 130}, 22);
}

TEST_CASE("gemm_tile_bf16 rounds its inputs: a float32 product would differ", "[bf16]") {
    for (bool portable : {false, true}) {
        if (!portable && skip_without_avx512_bf16()) continue;
        Portable mode(portable);
        // 1 + 2^-10 is not a bf16 value: it rounds to 1, so the product is exactly 3, not 3.0029...;
        // 1 + 3 * 2^-8 is a tie between two bf16 values and goes to the even one, 1 + 2^-6.
        const float a[] = {1.0f + std::ldexp(1.0f, -10), 1.0f + 3 * std::ldexp(1.0f, -8)}, b[] = {3.0f, 1.0f};
        float c[] = {0.0f};
        cpu::gemm_tile_bf16(false, false, 1, 1, 2, 1.0f, a, 2, b, 1, 0.0f, c, 1);
        CAPTURE(portable);
        CHECK(c[0] == 4.0f + std::ldexp(1.0f, -6));
    }
}

TEST_CASE("gemm_tile_bf16 with k = 0 scales C by beta, and refuses short leading dimensions", "[bf16]") {
    std::vector<float> c = {1, 2, 3, 4};
    cpu::gemm_tile_bf16(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
    CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2});
    std::vector<float> a(6), b(6), out(4);
    try {
        cpu::gemm_tile_bf16(false, false, 2, 2, 3, 1.0f, a.data(), 2, b.data(), 2, 0.0f, out.data(), 2);
        FAIL("lda 2 below k 3 was accepted");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("gemm_tile_bf16") != std::string::npos);
    }
}

TEST_CASE("gemm_tile_bf16 keeps per-thread scratch: threads at once, sizes growing and shrinking", "[bf16]") {
    std::vector<std::thread> threads;
    std::vector<int> failures(2, 0);
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            for (int rep = 0; rep < 20; ++rep) {
                const int64_t m = rep % 2 ? 130 : 9 + t, n = rep % 3 ? 40 : 257, k = rep % 2 ? 65 : 8;
                std::vector<float> a(static_cast<size_t>(m * k), 0.5f), b(static_cast<size_t>(k * n), 0.25f),
                    c(static_cast<size_t>(m * n));
                cpu::gemm_tile_bf16(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
                for (float v : c) failures[t] += v != 0.125f * k;  // exact: small sums of powers of two
            }
        });
    for (auto& th : threads) th.join();
    CHECK(failures == std::vector<int>{0, 0});
}
