#include <cmath>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

TEST_CASE("rope equals the per-element rotate_half formula (the default pairing), offset included", "[ops][rope]") {
    const int64_t B = 2, L = 3, H = 2, d = 6, offset = 5;
    const double base = 500;
    Tensor x = test::randn64({B, L, H, d}, 1, false);
    const auto xv = x.to_vector(), ov = rope(x, offset, base).to_vector();
    for (int64_t bl = 0; bl < B * L; ++bl)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < d / 2; ++i) {
                const double angle = static_cast<double>(offset + bl % L) * std::pow(base, -2.0 * i / d);
                const size_t row = static_cast<size_t>((bl * H + h) * d);
                const double x1 = xv[row + i], x2 = xv[row + i + d / 2];
                REQUIRE(ov[row + i] == Approx(x1 * std::cos(angle) - x2 * std::sin(angle)).margin(1e-14));
                REQUIRE(ov[row + i + d / 2] == Approx(x2 * std::cos(angle) + x1 * std::sin(angle)).margin(1e-14));
            }
    // Decoding: rows 1.. of a sequence equal the rope of those rows alone, at offset 1.
    LATTE_REQUIRE_CLOSE(narrow(rope(x, 0, base), 1, 1, 2), rope(narrow(x, 1, 1, 2), 1, base), 1e-14, 1e-15);
}

TEST_CASE("float32 rope forward and backward agree with float64", "[ops][rope]") {
    // d 40: 20 pairs per row, a 16-wide vector and a remainder; a permuted (copied) input.
    const Tensor x = test::randn64({2, 5, 3, 40}, 2, false), g = test::randn64({2, 5, 3, 40}, 3, false);
    for (bool permuted : {false, true}) {
        CAPTURE(permuted);
        auto run = [&](DType dtype) {
            Tensor xs = to(x, dtype).detach().requires_grad_();
            const Tensor in = permuted ? permute(permute(xs, {0, 2, 1, 3}).contiguous(), {0, 2, 1, 3}) : xs;
            const Tensor y = rope(in, 7, 1000.0);
            sum(mul(y, to(g, dtype))).backward();
            return std::vector<Tensor>{to(y.detach(), DType::Float64), to(xs.grad(), DType::Float64)};
        };
        const std::vector<Tensor> f32 = run(DType::Float32), f64 = run(DType::Float64);
        LATTE_REQUIRE_CLOSE(f32[0], f64[0], 1e-6, 1e-6);
        LATTE_REQUIRE_CLOSE(f32[1], f64[1], 1e-6, 1e-6);
    }
}

TEST_CASE("rope(q, m) . rope(k, n) depends only on m - n", "[ops][rope]") {
    Tensor q = test::randn64({1, 1, 1, 8}, 2, false), k = test::randn64({1, 1, 1, 8}, 3, false);
    auto score = [&](int64_t m, int64_t n) { return sum(mul(rope(q, m), rope(k, n))).item(); };
    for (int64_t shift : {1, 7, 100}) {
        REQUIRE(score(4 + shift, 2 + shift) == Approx(score(4, 2)).epsilon(1e-12));
        REQUIRE(score(0 + shift, 9 + shift) == Approx(score(0, 9)).epsilon(1e-12));
    }
    REQUIRE(score(5, 5) == Approx(sum(mul(q, k)).item()).epsilon(1e-12));  // equal positions: no rotation left
    REQUIRE(std::fabs(score(4, 2) - score(2, 4)) > 1e-6);                   // the sign of m - n matters
}

TEST_CASE("rope's backward is the inverse rotation and passes gradcheck", "[ops][rope][gradcheck]") {
    Tensor x = test::randn64({2, 3, 2, 4}, 4);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return rope(v[0], 3); }, {x});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return rope(permute(v[0], {0, 2, 1, 3}), 0, 100); }, {x});
    // Backpropagating rope(y) through rope gives y back: the rotation is orthogonal.
    Tensor y = test::randn64({2, 3, 2, 4}, 5, false);
    rope(x, 2).backward(rope(y, 2));
    LATTE_REQUIRE_CLOSE(x.grad(), y, 1e-13, 1e-14);
    REQUIRE_THROWS_WITH(rope(zeros({1, 2, 3, 5})), "rope: the last dim of x [1,2,3,5] must be even and > 0, got 5");
    REQUIRE_THROWS_WITH(rope(zeros({2, 4})), "rope: x must be (B, L, H, d) (at least 3-D: L, H, d), got [2,4]");
    REQUIRE_THROWS_WITH(rope(zeros({1, 2, 3, 4}), -1), "rope: position_offset must be >= 0, got -1");
}

TEST_CASE("dropout is seeded, scales kept values by 1/(1-p) and masks the gradient the same way", "[ops][dropout]") {
    const double p = 0.25;
    Tensor x = test::randn64({40, 50}, 6);
    Generator gen(7), same(7);
    Tensor out = dropout(x, p, gen);
    const Tensor u = rand(x.shape(), same, test::f64());  // the draws dropout made
    const auto uv = u.to_vector(), xv = x.to_vector(), ov = out.to_vector();
    size_t kept = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
        const bool keep = uv[i] >= p;
        kept += keep;
        REQUIRE(ov[i] == (keep ? xv[i] * (1 / (1 - p)) : 0.0));
    }
    REQUIRE(std::fabs(static_cast<double>(kept) / 2000.0 - 0.75) < 0.04);
    REQUIRE(gen.counter_state() == same.counter_state());
    out.backward(ones({40, 50}, test::f64()));
    const auto gv = x.grad().to_vector();
    for (size_t i = 0; i < gv.size(); ++i) REQUIRE(gv[i] == (uv[i] >= p ? 1 / (1 - p) : 0.0));
    LATTE_REQUIRE_GRADCHECK(
        [](const std::vector<Tensor>& v) {
            Generator g(11);
            return dropout(v[0], 0.5, g);
        },
        {test::randn64({3, 4}, 8)});
}

TEST_CASE("dropout is the identity when not training or p == 0, and refuses p below 0 or from 1 up", "[ops][dropout]") {
    Tensor x = test::randn64({3, 4}, 9);
    Generator gen(1);
    const uint64_t before = gen.counter_state();
    REQUIRE(dropout(x, 0.5, gen, false).same_as(x));
    REQUIRE(dropout(x, 0.0, gen).same_as(x));
    REQUIRE(gen.counter_state() == before);  // no draws
    REQUIRE_THROWS_WITH(dropout(x, 1.0, gen), "dropout: p must be in [0, 1), got 1 (input [3,4])");
    REQUIRE_THROWS_WITH(dropout(x, -0.1, gen), "dropout: p must be in [0, 1), got -0.1 (input [3,4])");
}

TEST_CASE("interleaved rope rotates pairs (2i, 2i+1), equals rotate_half on permuted features, and passes gradcheck",
          "[ops][rope]") {
    const int64_t B = 2, L = 3, H = 2, d = 6, offset = 4;
    const double base = 300;
    Tensor x = test::randn64({B, L, H, d}, 6, false);
    const auto xv = x.to_vector(), ov = rope(x, offset, base, RoPEPairing::Interleaved).to_vector();
    for (int64_t bl = 0; bl < B * L; ++bl)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < d / 2; ++i) {
                const double angle = static_cast<double>(offset + bl % L) * std::pow(base, -2.0 * i / d);
                const size_t row = static_cast<size_t>((bl * H + h) * d);
                const double x1 = xv[row + 2 * i], x2 = xv[row + 2 * i + 1];
                REQUIRE(ov[row + 2 * i] == Approx(x1 * std::cos(angle) - x2 * std::sin(angle)).margin(1e-14));
                REQUIRE(ov[row + 2 * i + 1] == Approx(x2 * std::cos(angle) + x1 * std::sin(angle)).margin(1e-14));
            }
    // DeepSeek's reference code permutes features (0 2 4 1 3 5) and applies rotate-half: the same numbers.
    auto perm = [](const Tensor& t) { return cat({slice(t, -1, 0, 6, 2), slice(t, -1, 1, 6, 2)}, -1); };
    const Tensor via_half = rope(perm(x), offset, base, RoPEPairing::RotateHalf);
    LATTE_REQUIRE_CLOSE(perm(rope(x, offset, base, RoPEPairing::Interleaved)), via_half, 1e-14, 1e-15);
    // The two conventions differ on the same input (d > 2).
    REQUIRE(relative_error(rope(x, offset, base, RoPEPairing::Interleaved), rope(x, offset, base)) > 1e-3);
    Tensor g = test::randn64({2, 3, 2, 4}, 7);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return rope(v[0], 3, 100, RoPEPairing::Interleaved); },
                            {g});
    REQUIRE(rope_pairing_name(parse_rope_pairing("interleaved")) == "interleaved");
    REQUIRE_THROWS_WITH(parse_rope_pairing("gptj", "latte lm: --rope-pairing"),
                        "latte lm: --rope-pairing: the RoPE pairing must be rotate_half or interleaved, got 'gptj'");
}
