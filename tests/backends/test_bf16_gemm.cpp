// gemm_bf16 (backends/cpu/bf16_gemm.h) against a float64 product of the same bf16-rounded inputs:
// the only differences left are float32's rounding while accumulating. On a CPU without bf16
// instructions (or with AMX only, in a build without oneDNN) the products are skipped with a
// message and only the refusal is checked.
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <sstream>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/dnnl_matmul.h"
#include "backends/cpu/parallel.h"
#include "core/error.h"
#include "experiments/commands.h"
#include "tests/support/bf16_reference.h"

using namespace latte;

namespace {

float from_bits(uint16_t h) {
    const uint32_t bits = uint32_t{h} << 16;
    float y;
    std::memcpy(&y, &bits, sizeof y);
    return y;
}

bool skip_unless_supported() {
    std::string why;
    if (cpu::bf16_supported(&why)) return false;
    WARN("bf16 products skipped: " << why);
    return true;
}

}  // namespace

TEST_CASE("to_bf16 rounds to nearest, ties to even", "[bf16]") {
    CHECK(cpu::to_bf16(1.0f) == 0x3f80);
    CHECK(cpu::to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);      // a tie below an even pattern
    CHECK(cpu::to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);  // a tie above an odd one
    CHECK(cpu::to_bf16(1.0f + 5 * std::ldexp(1.0f, -9)) == 0x3f81);  // above the tie
    CHECK(cpu::to_bf16(-2.0f) == 0xc000);
    CHECK(cpu::to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
    CHECK(std::isnan(from_bits(cpu::to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 3.0f);
    for (int i = 0; i < 10000; ++i) {
        const float x = dist(rng);
        REQUIRE(from_bits(cpu::to_bf16(x)) == test::round_bf16(x));
    }
}

TEST_CASE("gemm_bf16 matches a float64 product of the bf16-rounded inputs", "[bf16]") {
    if (skip_unless_supported()) return;
    INFO(cpu::bf16_backend_name());
    test::check_bf16_gemm_sizes(cpu::gemm_bf16, {1, 7, 33, 257}, 11);
}

TEST_CASE("gemm_bf16_onednn, the AMX CPUs' path, matches the same reference", "[bf16]") {
    std::string why;
    if (skip_unless_supported()) return;
    if (!cpu::dnnl_available(&why)) {
        WARN("oneDNN's bf16 products skipped: " << why);
        return;
    }
    test::check_bf16_gemm_sizes(cpu::gemm_bf16_onednn, {1, 7, 33, 257}, 12);
}

TEST_CASE("gemm_bf16 splits a large product over the pool: by rows, by columns when C is wider, by k when k is long",
          "[bf16]") {
    if (skip_unless_supported()) return;
    INFO(cpu::bf16_backend_name());
    // Sizes past the kernel's row block (128) and not multiples of its 8 x 32 microkernel, large
    // enough that each thread gets a share. A k long beside m and n (a weight gradient) is split
    // over the threads when each gets at least 2^20 multiply-adds: k sized from the thread count,
    // so that each part also crosses the kernel's 1024 block of k.
    const int64_t threads = cpu::num_threads();
    const int64_t long_k = std::max<int64_t>(1100 * threads + 1, threads * (int64_t{1} << 20) / (40 * 70) + 7);
    INFO("threads " << threads << ", long k " << long_k);
    std::mt19937 rng(5);
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            test::check_bf16_gemm(cpu::gemm_bf16, {ta, tb, 601, 45, 530, 3, 0.75f, 0.5f}, rng);  // rows
            test::check_bf16_gemm(cpu::gemm_bf16, {ta, tb, 37, 611, 300, 0, 1.0f, 0.0f}, rng);   // columns
            test::check_bf16_gemm(cpu::gemm_bf16, {ta, tb, 40, 70, long_k, 2, 1.0f, 0.0f}, rng);   // parts of k
            test::check_bf16_gemm(cpu::gemm_bf16, {ta, tb, 40, 70, long_k + 1, 0, -2.0f, 1.0f}, rng);
        }
}

TEST_CASE("gemm_bf16 rounds its inputs: a float32 product would differ", "[bf16]") {
    if (skip_unless_supported()) return;
    // 1 + 2^-10 is not a bf16 value: it rounds to 1, so the product is exactly 3, not 3.0029...
    const float a[] = {1.0f + std::ldexp(1.0f, -10)}, b[] = {3.0f};
    float c[] = {0.0f};
    cpu::gemm_bf16(false, false, 1, 1, 1, 1.0f, a, 1, b, 1, 0.0f, c, 1);
    CHECK(c[0] == 3.0f);
}

TEST_CASE("gemm_bf16 with k = 0 scales C by beta, and refuses short leading dimensions", "[bf16]") {
    if (skip_unless_supported()) return;
    std::vector<float> c = {1, 2, 3, 4};
    cpu::gemm_bf16(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
    CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2});
    std::vector<float> a(6), b(6), out(4);
    try {
        cpu::gemm_bf16(false, false, 2, 2, 3, 1.0f, a.data(), 2, b.data(), 2, 0.0f, out.data(), 2);
        FAIL("lda 2 below k 3 was accepted");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("gemm_bf16") != std::string::npos);
    }
}

TEST_CASE("gemm_bf16 runs from several threads at once", "[bf16]") {
    if (skip_unless_supported()) return;
    std::vector<std::thread> threads;
    std::vector<int> failures(2, 0);
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            const int64_t m = 40 + t, n = 24, k = 65;
            std::vector<float> a(static_cast<size_t>(m * k), 0.5f), b(static_cast<size_t>(k * n), 0.25f), c(m * n);
            for (int rep = 0; rep < 20; ++rep) {
                cpu::gemm_bf16(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
                for (float v : c) failures[t] += v != 0.125f * k;  // exact: small sums of powers of two
            }
        });
    for (auto& th : threads) th.join();
    CHECK(failures == std::vector<int>{0, 0});
}

TEST_CASE("gemm_bf16 refuses, naming why, where bf16 products cannot run", "[bf16]") {
    std::string real_why;
    const bool real = cpu::bf16_supported(&real_why);
    // Without oneDNN the reason says latte was built without it, on any CPU.
    std::string dnnl_why;
    if (!cpu::dnnl_available(&dnnl_why)) CHECK(dnnl_why.find("oneDNN") != std::string::npos);
    if (!real && cpu::cpu_features().avx512_bf16) CHECK(real_why == dnnl_why);
    if (real) CHECK(real_why.empty());

    cpu::detail::set_bf16_refusal_for_testing("simulated: no bf16 here");
    std::string why;
    CHECK_FALSE(cpu::bf16_supported(&why));
    CHECK(why == "simulated: no bf16 here");
    CHECK(cpu::bf16_backend_name() == "none (simulated: no bf16 here)");
    std::vector<float> a(6), b(6), c(4);
    try {
        cpu::gemm_bf16(false, false, 2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2);
        FAIL("gemm_bf16 ran while refused");
    } catch (const Error& e) {
        const std::string msg = e.what();
        CHECK(msg.find("gemm_bf16") != std::string::npos);
        CHECK(msg.find("(2x3)") != std::string::npos);
        CHECK(msg.find("simulated: no bf16 here") != std::string::npos);
    }
    cpu::detail::set_bf16_refusal_for_testing("");
    CHECK(cpu::bf16_supported() == real);
}

TEST_CASE("latte info names the libraries of float32 and bf16 products", "[bf16][cli]") {
    std::ostringstream captured;
    std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
    char prog[] = "latte", cmd[] = "info";
    char* argv[] = {prog, cmd, nullptr};
    const int rc = experiments::cmd_info(2, argv, 2);
    std::cout.rdbuf(old);
    REQUIRE(rc == 0);
    const std::string text = captured.str();
    INFO(text);
    CHECK_THAT(text, Catch::Contains("float32:  products on OpenBLAS"));
    CHECK_THAT(text, Catch::Contains("bf16:     " + cpu::bf16_backend_name()));
    std::string why;
    if (cpu::bf16_supported(&why))  // latte's kernel, or oneDNN's on an AMX CPU
        CHECK_THAT(text, Catch::Contains("bf16:     latte's vdpbf16ps kernel") || Catch::Contains("bf16:     oneDNN"));
    else
        CHECK_THAT(text, Catch::Contains("bf16:     none (" + why + ")"));
}
