#include <cmath>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

// The per-row loop of torch's formulas (layer_norm: biased variance).
std::vector<double> norm_loop(bool layer, const std::vector<double>& x, const std::vector<double>& w,
                              const std::vector<double>& b, size_t cols, double eps) {
    std::vector<double> y(x.size());
    for (size_t r = 0; r < x.size() / cols; ++r) {
        double mu = 0, var = 0;
        if (layer) {
            for (size_t c = 0; c < cols; ++c) mu += x[r * cols + c];
            mu /= static_cast<double>(cols);
        }
        for (size_t c = 0; c < cols; ++c) var += (x[r * cols + c] - mu) * (x[r * cols + c] - mu);
        var /= static_cast<double>(cols);
        for (size_t c = 0; c < cols; ++c)
            y[r * cols + c] = (x[r * cols + c] - mu) / std::sqrt(var + eps) * (w.empty() ? 1.0 : w[c]) +
                              (b.empty() ? 0.0 : b[c]);
    }
    return y;
}

}  // namespace

TEST_CASE("rms_norm and layer_norm match the per-row loop of torch's formulas", "[ops][norm]") {
    Tensor x = test::randn64({2, 3, 7}, 1), w = test::randn64({7}, 2), b = test::randn64({7}, 3);
    const auto xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector();
    LATTE_REQUIRE_CLOSE(rms_norm(x, w, 1e-6), from_vector(norm_loop(false, xv, wv, {}, 7, 1e-6), x.shape(), test::f64()),
                        1e-13, 1e-14);
    LATTE_REQUIRE_CLOSE(layer_norm(x, w, b, 1e-5),
                        from_vector(norm_loop(true, xv, wv, bv, 7, 1e-5), x.shape(), test::f64()), 1e-13, 1e-14);
    LATTE_REQUIRE_CLOSE(rms_norm(x, Tensor(), 0.1), from_vector(norm_loop(false, xv, {}, {}, 7, 0.1), x.shape(), test::f64()),
                        1e-13, 1e-14);
    LATTE_REQUIRE_CLOSE(layer_norm(x, Tensor(), Tensor()),
                        from_vector(norm_loop(true, xv, {}, {}, 7, 1e-5), x.shape(), test::f64()), 1e-13, 1e-14);
}

TEST_CASE("rms_norm and layer_norm pass gradcheck for x, weight and bias", "[ops][norm][gradcheck]") {
    Tensor x = test::randn64({3, 2, 5}, 4), w = test::randn64({5}, 5), b = test::randn64({5}, 6);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return rms_norm(v[0], v[1], 1e-3); }, {x, w});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return layer_norm(v[0], v[1], v[2], 1e-3); }, {x, w, b});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return rms_norm(v[0], Tensor(), 1e-3); }, {x});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return layer_norm(v[0], Tensor(), Tensor(), 1e-3); }, {x});
    // A non-contiguous x (a transpose) goes through the same kernels.
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return layer_norm(transpose(v[0], 0, 1), v[1], v[2]); },
                            {x, w, b});
}

TEST_CASE("float32 norms accumulate in double: an offset of 1000 loses nothing", "[ops][norm]") {
    Tensor x = add(test::randn64({16, 512}, 7, false), 1000.0), w = test::randn64({512}, 8, false);
    Tensor b = test::randn64({512}, 9, false);
    const Tensor x32 = to(x, DType::Float32), w32 = to(w, DType::Float32), b32 = to(b, DType::Float32);
    // x itself is rounded to float32 first, so compare against float64 of the rounded input.
    const Tensor xr = to(x32, DType::Float64);
    REQUIRE(relative_error(to(layer_norm(x32, w32, b32), DType::Float64),
                           layer_norm(xr, to(w32, DType::Float64), to(b32, DType::Float64))) < 1e-6);
    REQUIRE(relative_error(to(rms_norm(x32, w32), DType::Float64), rms_norm(xr, to(w32, DType::Float64))) < 1e-6);
}

TEST_CASE("float32 norms forward and backward agree with float64, with and without weight and bias", "[ops][norm]") {
    // 13 columns: the vectorized rows' 8 lanes and a remainder.
    const Tensor x = test::randn64({6, 13}, 10, false), w = test::randn64({13}, 11, false),
                 b = test::randn64({13}, 12, false), g = test::randn64({6, 13}, 13, false);
    for (bool layer : {false, true})
        for (bool affine : {false, true}) {
            CAPTURE(layer, affine);
            auto run = [&](DType dtype) {
                // detach(): fresh leaves, so that x, w and b themselves never start requiring grad
                Tensor xs = to(x, dtype).detach().requires_grad_();
                Tensor ws = affine ? to(w, dtype).detach().requires_grad_() : Tensor();
                Tensor bs = affine && layer ? to(b, dtype).detach().requires_grad_() : Tensor();
                const Tensor y = layer ? layer_norm(xs, ws, bs) : rms_norm(xs, ws);
                sum(mul(y, to(g, dtype))).backward();
                std::vector<Tensor> out = {to(y.detach(), DType::Float64), to(xs.grad(), DType::Float64)};
                if (affine) out.push_back(to(ws.grad(), DType::Float64));
                return out;
            };
            const std::vector<Tensor> f32 = run(DType::Float32), f64 = run(DType::Float64);
            for (size_t i = 0; i < f32.size(); ++i) {
                INFO("tensor " << i << " (y, dx, dw)");
                LATTE_REQUIRE_CLOSE(f32[i], f64[i], 2e-5, 2e-5);
            }
        }
}

TEST_CASE("rms_norm and layer_norm refuse mismatched parameters", "[ops][norm]") {
    REQUIRE_THROWS_WITH(rms_norm(zeros({2, 5}), zeros({4})),
                        "rms_norm: weight [4] must be 1-D of x's last dim (5); x is [2,5]");
    REQUIRE_THROWS_WITH(layer_norm(zeros({2, 5}), zeros({5}), zeros({5, 1})),
                        "layer_norm: bias [5,1] must be 1-D of x's last dim (5); x is [2,5]");
    REQUIRE_THROWS_WITH(rms_norm(zeros({2, 5}), zeros({5}), -1.0), "rms_norm: eps must be finite and >= 0, got -1");
    REQUIRE_THROWS_WITH(layer_norm(zeros({}), Tensor(), Tensor()),
                        "layer_norm: x must have a nonempty last dim, got []");
}
