#include <cmath>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

TEST_CASE("softmax and log_softmax match the closed form and are stable", "[ops][softmax]") {
    Tensor x = from_vector(std::vector<double>{1, 2, 3, 1000, 1001, 1002}, {2, 3}, test::f64());
    const auto y = softmax(x, 1).to_vector();
    const double z = 1 + std::exp(1.0) + std::exp(2.0);
    for (int r = 0; r < 2; ++r) {
        REQUIRE(y[static_cast<size_t>(r * 3)] == Approx(1 / z).epsilon(1e-14));
        REQUIRE(y[static_cast<size_t>(r * 3 + 2)] == Approx(std::exp(2.0) / z).epsilon(1e-14));
    }
    const auto ly = log_softmax(x, -1).to_vector();
    REQUIRE(ly[5] == Approx(2 - std::log(z)).epsilon(1e-14));
    // Over dim 0 of a column-stacked input equals over dim 1 of its transpose.
    Tensor t = test::randn64({5, 4}, 1, false);
    LATTE_REQUIRE_CLOSE(softmax(t, 0), transpose(softmax(transpose(t, 0, 1), 1), 0, 1), 1e-14, 0);
}

TEST_CASE("softmax and log_softmax pass gradcheck on every dim", "[ops][softmax]") {
    Tensor x = test::randn64({2, 3, 4}, 61);
    for (int64_t dim : {0, 1, 2, -1}) {
        INFO("dim " << dim);
        LATTE_REQUIRE_GRADCHECK([dim](const std::vector<Tensor>& v) { return softmax(v[0], dim); }, {x});
        LATTE_REQUIRE_GRADCHECK([dim](const std::vector<Tensor>& v) { return log_softmax(v[0], dim); }, {x});
    }
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return softmax(permute(v[0], {2, 0, 1}), -1); }, {x});
    Tensor f = to(x.detach(), DType::Float32);
    LATTE_REQUIRE_CLOSE(to(softmax(f, 1), DType::Float64), softmax(x.detach(), 1), 1e-5, 1e-7);
    LATTE_REQUIRE_CLOSE(to(log_softmax(f, 2), DType::Float64), log_softmax(x.detach(), 2), 1e-5, 1e-6);
}

TEST_CASE("mse_loss equals the mean of squared differences", "[ops][loss]") {
    Tensor a = test::randn64({3, 4}, 71), b = test::randn64({3, 4}, 72);
    const auto va = a.to_vector(), vb = b.to_vector();
    double want = 0;
    for (size_t i = 0; i < va.size(); ++i) want += (va[i] - vb[i]) * (va[i] - vb[i]);
    REQUIRE(mse_loss(a, b).item() == Approx(want / 12).epsilon(1e-14));
    REQUIRE(mse_loss(a, b, Reduction::Sum).item() == Approx(want).epsilon(1e-14));
    REQUIRE(mse_loss(a, b, Reduction::None).shape() == Shape{3, 4});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return mse_loss(v[0], v[1]); }, {a, b});
    REQUIRE_THROWS_WITH(mse_loss(zeros({3}), zeros({3, 1})), "mse_loss: input [3] and target [3,1] differ in shape");
}

TEST_CASE("mse_loss's fused passes equal sub, mul and the reduction, forward and backward", "[ops][loss]") {
    Tensor a = test::randn64({3, 4}, 73), b = test::randn64({3, 4}, 74);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return mse_loss(v[0], v[1], Reduction::Sum); }, {a, b});
    // float32, 1000 elements (the vector loops and their remainders), a transposed (copied) input
    // and a target that needs its gradient too.
    for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
        Tensor x = to(test::randn64({25, 40}, 75, false), DType::Float32).requires_grad_();
        Tensor y = to(test::randn64({40, 25}, 76, false), DType::Float32).requires_grad_();
        auto run = [&](bool fused) {
            x.zero_grad();
            y.zero_grad();
            const Tensor xt = transpose(x, 0, 1);
            const Tensor loss = fused ? mse_loss(xt, y, r)
                                      : (r == Reduction::Mean ? mean(mul(sub(xt, y), sub(xt, y)))
                                                              : sum(mul(sub(xt, y), sub(xt, y))));
            mul(loss, 3.0).backward();  // an upstream gradient other than 1
            return std::vector<Tensor>{loss.detach(), x.grad(), y.grad()};
        };
        const std::vector<Tensor> fused = run(true), composed = run(false);
        for (size_t i = 0; i < fused.size(); ++i) {
            INFO("tensor " << i << " (loss, dx, dy), reduction " << (r == Reduction::Mean ? "mean" : "sum"));
            LATTE_REQUIRE_CLOSE(fused[i], composed[i], 1e-6, 1e-7);
        }
    }
    // Only the target needs its gradient: -2 (input - target) / N.
    {
        Tensor x = test::randn64({2, 5}, 77, false), y = test::randn64({2, 5}, 78);
        mse_loss(x, y).backward();
        LATTE_REQUIRE_CLOSE(y.grad(), mul(sub(x, y.detach()), -2.0 / 10), 1e-15, 1e-15);
        LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return mse_loss(x, v[0]); }, {y});
    }
    // NaN in the input is the loss, as in the composed form; an empty input keeps the composed
    // form's answers (a mean over nothing is refused, a sum is 0).
    Tensor nan_in = from_vector(std::vector<double>{1.0, std::nan(""), 2.0}, {3}, test::f64());
    REQUIRE(std::isnan(mse_loss(nan_in, zeros_like(nan_in)).item()));
    REQUIRE_THROWS_WITH(mse_loss(zeros({0}), zeros({0})), Catch::Contains("mean: reducing an empty dim"));
    REQUIRE(mse_loss(zeros({0}), zeros({0}), Reduction::Sum).item() == 0.0);
}

TEST_CASE("relative_error of equal tensors is 0, zeros included", "[ops][loss]") {
    REQUIRE(relative_error(zeros({3}), zeros({3})) == 0);
    REQUIRE(relative_error(ones({3}), ones({3})) == 0);
    REQUIRE(std::isinf(relative_error(ones({3}), zeros({3}))));
    REQUIRE(relative_error(full({4}, 2.0), ones({4})) == 1);
}
