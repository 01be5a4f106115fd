#include <cmath>
#include <limits>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

// Applies f to each element of x (float64) on the host.
template <class F>
Tensor map64(const Tensor& x, F f) {
    std::vector<double> v = x.to_vector();
    for (double& e : v) e = f(e);
    return from_vector(v, x.shape(), test::f64());
}

}  // namespace

TEST_CASE("sigmoid, silu, gelu, abs and clamp match their closed forms", "[ops][activation]") {
    Tensor x = mul(test::randn64({4, 5}, 1, false), 3.0);
    auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
    LATTE_REQUIRE_CLOSE(sigmoid(x), map64(x, sig), 1e-14, 1e-15);
    LATTE_REQUIRE_CLOSE(silu(x), map64(x, [&](double v) { return v * sig(v); }), 1e-14, 1e-15);
    LATTE_REQUIRE_CLOSE(gelu(x), map64(x, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }), 1e-14,
                        1e-15);
    LATTE_REQUIRE_CLOSE(gelu(x, true), map64(x, [](double v) {
                            return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
                        }),
                        1e-14, 1e-15);
    LATTE_REQUIRE_CLOSE(abs(x), map64(x, [](double v) { return std::fabs(v); }), 0, 0);
    LATTE_REQUIRE_CLOSE(clamp(x, -1.0, 0.5), map64(x, [](double v) { return std::min(std::max(v, -1.0), 0.5); }), 0, 0);
    // Extremes stay finite where the closed form is: sigmoid(+-800) is 1 and 0.
    const auto s = sigmoid(from_vector(std::vector<double>{-800, 800}, {2}, test::f64())).to_vector();
    REQUIRE(s == std::vector<double>{0, 1});
    // clamp keeps NaN, as torch.
    REQUIRE(std::isnan(clamp(full({1}, std::nan("")), 0.0, 1.0).item()));
}

TEST_CASE("activations pass gradcheck", "[ops][activation][gradcheck]") {
    Generator gen(2);
    Tensor x = randn({3, 4}, gen, test::f64(true), 0.0, 2.0);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return sigmoid(v[0]); }, {x});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return silu(v[0]); }, {x});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return gelu(v[0]); }, {x});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return gelu(v[0], true); }, {x});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return abs(v[0]); }, {x});
    // Away from the bounds (finite differences straddle a kink there).
    Tensor y = from_vector(std::vector<double>{-2, -0.7, 0.1, 0.45, 0.9, 3}, {6}, test::f64(true));
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return clamp(v[0], -1.0, 0.5); }, {y});
}

TEST_CASE("clamp passes the gradient at its bounds, as torch does", "[ops][activation]") {
    Tensor x = from_vector(std::vector<double>{-1, 0.5, 0, -3, 2}, {5}, test::f64(true));
    clamp(x, -1.0, 0.5).backward(ones({5}, test::f64()));
    REQUIRE(x.grad().to_vector() == std::vector<double>{1, 1, 1, 0, 0});
    Tensor z = from_vector(std::vector<double>{0, -2, 2}, {3}, test::f64(true));
    abs(z).backward(ones({3}, test::f64()));
    REQUIRE(z.grad().to_vector() == std::vector<double>{0, -1, 1});
    REQUIRE_THROWS_WITH(clamp(zeros({2}), 1.0, 0.0), "clamp: lo 1 must not exceed hi 0 (input [2])");
    REQUIRE_THROWS_WITH(silu(zeros({2}, TensorOptions{}.with_dtype(DType::Int64))),
                        "silu: expects a floating-point tensor, got int64 of shape [2]; convert it with to(dtype)");
}

TEST_CASE("where selects exactly, broadcasts like torch and routes the gradient", "[ops][where]") {
    const double inf = std::numeric_limits<double>::infinity();
    Tensor cond = from_vector(std::vector<double>{1, 0, 1, 0, 0, 1}, {2, 3}, test::f64());
    Tensor a = test::randn64({2, 3}, 3), b = test::randn64({3}, 4);
    const auto cv = cond.to_vector(), av = a.to_vector(), bv = b.to_vector();
    std::vector<double> want(6);
    for (size_t i = 0; i < 6; ++i) want[i] = cv[i] != 0 ? av[i] : bv[i % 3];
    REQUIRE(where(cond, a, b).to_vector() == want);
    // An int64 condition, and -inf in the branch not taken stays out (a*c + b*(1-c) would give NaN).
    Tensor icond = from_vector(std::vector<double>{0, 3, 0}, {3}, TensorOptions{}.with_dtype(DType::Int64));
    const auto m = where(icond, full({3}, -inf, test::f64()), b.detach()).to_vector();
    REQUIRE(m == std::vector<double>{bv[0], -inf, bv[2]});
    where(cond, a, b).backward(ones({2, 3}, test::f64()));
    REQUIRE(a.grad().to_vector() == cv);
    REQUIRE(b.grad().to_vector() == std::vector<double>{1, 2, 0});  // summed over the broadcast dim
    LATTE_REQUIRE_GRADCHECK([cond](const std::vector<Tensor>& v) { return where(cond, v[0], v[1]); }, {a, b});
    REQUIRE_THROWS_WITH(where(zeros({2, 3}, TensorOptions{}.with_dtype(DType::Float64)), zeros({2, 3}), zeros({2, 3})),
                        "where: cond must be int64 or float32 like a, got float64 [2,3]");
    REQUIRE_THROWS_WITH(where(zeros({4}), zeros({2, 3}), zeros({2, 3})), Catch::Contains("where"));
}

TEST_CASE("swiglu equals silu then mul, forward and backward, and refuses mismatched inputs", "[ops][activation]") {
    // float64: the closed form, and gradcheck of both inputs.
    Tensor gate = mul(test::randn64({6, 7}, 11, false), 3.0).requires_grad_(), up = test::randn64({6, 7}, 12);
    auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
    const std::vector<double> gv = gate.to_vector(), uv = up.to_vector();
    std::vector<double> want(gv.size());
    for (size_t i = 0; i < gv.size(); ++i) want[i] = gv[i] * sig(gv[i]) * uv[i];
    LATTE_REQUIRE_CLOSE(swiglu(gate, up), from_vector(want, {6, 7}, test::f64()), 1e-14, 1e-15);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return swiglu(v[0], v[1]); }, {gate, up});

    // float32, 1000 elements (the vector loops and their remainders) and a transposed (copied)
    // gate: the fused kernel evaluates silu then mul's own expressions, so the values and both
    // gradients agree with the composed ops to a few float32 ulps.
    for (bool transposed : {false, true}) {
        CAPTURE(transposed);
        Tensor g32 = to(mul(test::randn64({40, 25}, 13, false), 4.0), DType::Float32).requires_grad_();
        Tensor u32 = to(test::randn64({40, 25}, 14, false), DType::Float32).requires_grad_();
        const Tensor weights = to(test::randn64({40, 25}, 15, false), DType::Float32);
        auto run = [&](bool fused) {
            g32.zero_grad();
            u32.zero_grad();
            const Tensor gate_in = transposed ? transpose(transpose(g32, 0, 1).contiguous(), 0, 1) : g32;
            const Tensor out = fused ? swiglu(gate_in, u32) : mul(silu(gate_in), u32);
            sum(mul(out, weights)).backward();
            return std::vector<Tensor>{out.detach(), g32.grad(), u32.grad()};
        };
        const std::vector<Tensor> fused = run(true), composed = run(false);
        for (size_t i = 0; i < fused.size(); ++i) {
            INFO("tensor " << i << " (out, dgate, dup)");
            LATTE_REQUIRE_CLOSE(fused[i], composed[i], 1e-6, 1e-6);
        }
    }

    Tensor a = test::randn64({2, 3}, 16), b = test::randn64({3, 2}, 17);
    REQUIRE_THROWS_WITH(swiglu(a, b), Catch::Contains("swiglu: gate [2,3] and up [3,2] must have the same shape"));
    REQUIRE_THROWS_WITH(swiglu(a, to(a, DType::Float32)), Catch::Contains("swiglu"));
}
