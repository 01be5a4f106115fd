#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

TEST_CASE("sum and mean over dims match hand sums", "[ops][reduce]") {
    Tensor x = reshape(arange(0, 24, 1, test::f64()), {2, 3, 4});
    REQUIRE(sum(x).item() == 276);
    REQUIRE(sum(x).dim() == 0);
    REQUIRE(mean(x).item() == Approx(11.5));
    Tensor s1 = sum(x, {1});
    REQUIRE(s1.shape() == Shape{2, 4});
    REQUIRE(s1.to_vector() == std::vector<double>{12, 15, 18, 21, 48, 51, 54, 57});
    Tensor s02 = sum(x, {0, 2}, true);
    REQUIRE(s02.shape() == Shape{1, 3, 1});
    REQUIRE(s02.to_vector() == std::vector<double>{60, 92, 124});
    REQUIRE(sum(x, {-1}).to_vector() == std::vector<double>{6, 22, 38, 54, 70, 86});
    REQUIRE(mean(x, {0}).to_vector()[0] == 6);
    // A permuted (non-contiguous) input takes the copy path.
    REQUIRE(sum(permute(x, {2, 1, 0}), {2}).to_vector() == contiguous(transpose(sum(x, {0}), 0, 1)).to_vector());
    // Large reductions (threaded) over leading and trailing dims.
    Generator gen(1);
    Tensor big = randn({64, 300, 5}, gen, test::f64());
    const auto v = big.to_vector();
    const auto lead = sum(big, {0}).to_vector();
    const auto tail = sum(big, {2}).to_vector();
    double want_lead = 0, want_tail = 0;
    for (int64_t i = 0; i < 64; ++i) want_lead += v[static_cast<size_t>(i * 1500 + 7)];
    for (int64_t k = 0; k < 5; ++k) want_tail += v[static_cast<size_t>(1234 * 5 + k)];
    REQUIRE(lead[7] == Approx(want_lead).epsilon(1e-12));
    REQUIRE(tail[1234] == Approx(want_tail).epsilon(1e-12));
}

TEST_CASE("amax over a dim shares the gradient between ties", "[ops][reduce]") {
    Tensor x = from_vector(std::vector<double>{1, 5, 5, 2, -1, 0}, {2, 3}, test::f64(true));
    Tensor m = amax(x, 1);
    REQUIRE(m.to_vector() == std::vector<double>{5, 2});
    REQUIRE(amax(x, 0, true).shape() == Shape{1, 3});
    REQUIRE(max(x).item() == 5);
    sum(m).backward();
    REQUIRE(x.grad().to_vector() == std::vector<double>{0, 0.5, 0.5, 1, 0, 0});
}

TEST_CASE("max over a dim returns values and int64 indices; the gradient goes to the index", "[ops][reduce]") {
    Tensor x = from_vector(std::vector<double>{1, 5, 5, 2, -1, 0}, {2, 3}, test::f64(true));
    const MaxResult m = max(x, 1);
    REQUIRE(m.values.to_vector() == std::vector<double>{5, 2});
    REQUIRE(m.indices.dtype() == DType::Int64);
    REQUIRE(m.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0});  // the first of tied maxima
    sum(m.values).backward();
    REQUIRE(x.grad().to_vector() == std::vector<double>{0, 1, 0, 1, 0, 0});

    const MaxResult cols = max(x, 0, true);
    REQUIRE(cols.values.shape() == Shape{1, 3});
    REQUIRE(cols.indices.shape() == Shape{1, 3});
    REQUIRE(cols.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
    // A non-contiguous input and a middle dim.
    Tensor y = test::randn64({3, 4, 5}, 8, false);
    const MaxResult mid = max(permute(y, {2, 1, 0}), 1);
    const auto v = y.to_vector();
    const auto idx = mid.indices.to_vector<int64_t>();
    const auto vals = mid.values.to_vector();
    for (int64_t a = 0; a < 5; ++a)
        for (int64_t c = 0; c < 3; ++c) {
            int64_t best = 0;
            for (int64_t b = 1; b < 4; ++b)
                if (v[static_cast<size_t>(c * 20 + b * 5 + a)] > v[static_cast<size_t>(c * 20 + best * 5 + a)]) best = b;
            REQUIRE(idx[static_cast<size_t>(a * 3 + c)] == best);
            REQUIRE(vals[static_cast<size_t>(a * 3 + c)] == v[static_cast<size_t>(c * 20 + best * 5 + a)]);
        }
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& in) { return max(in[0], 1).values; },
                            {test::randn64({3, 4, 2}, 9)});
}

TEST_CASE("max propagates NaN and points at it", "[ops][reduce]") {
    Tensor x = from_vector(std::vector<double>{1, NAN, 3, 4, 2, 0}, {2, 3}, test::f64());
    const MaxResult m = max(x, 1);
    const auto values = m.values.to_vector();
    REQUIRE(std::isnan(values[0]));
    REQUIRE(values[1] == 4);
    REQUIRE(m.indices.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
    REQUIRE(std::isnan(amax(x, 1).to_vector()[0]));
    REQUIRE(std::isnan(max(x).item()));
}

TEST_CASE("float32 reductions over long rows match a float64 reference", "[ops][reduce][accuracy]") {
    // 2^20 elements: a float32 running sum drifts by ~1e-5 relative; double accumulation stays ~1e-7.
    const int64_t n = int64_t(1) << 20;
    Tensor x64 = test::uniform64({1, n}, 5, 0.0, 4.0, false);
    Tensor x32 = to(x64, DType::Float32);
    Tensor exact = to(x32, DType::Float64);  // the same float32 inputs, computed in float64
    LATTE_REQUIRE_CLOSE(to(sum(x32), DType::Float64), sum(exact), 1e-6, 0);
    LATTE_REQUIRE_CLOSE(to(mean(x32), DType::Float64), mean(exact), 1e-6, 0);
    LATTE_REQUIRE_CLOSE(to(sum(x32, {0}), DType::Float64), sum(exact, {0}), 1e-6, 0);
    LATTE_REQUIRE_CLOSE(to(softmax(x32, -1), DType::Float64), softmax(exact, -1), 1e-6, 0);
    LATTE_REQUIRE_CLOSE(to(log_softmax(x32, -1), DType::Float64), log_softmax(exact, -1), 1e-6, 1e-6);
    Tensor t32 = zeros({1, n});
    LATTE_REQUIRE_CLOSE(to(mse_loss(x32, t32), DType::Float64), mse_loss(exact, to(t32, DType::Float64)), 1e-6, 0);
    // The softmax backward sums over the row too.
    Tensor g64 = test::randn64({1, n}, 6, false);
    Tensor xs32 = to(x64, DType::Float32).detach().requires_grad_(true);
    Tensor xs64 = to(xs32.detach(), DType::Float64).requires_grad_(true);
    sum(mul(softmax(xs32, -1), to(g64, DType::Float32))).backward();
    sum(mul(softmax(xs64, -1), to(to(g64, DType::Float32), DType::Float64))).backward();
    LATTE_REQUIRE_CLOSE(to(xs32.grad(), DType::Float64), xs64.grad(), 1e-5, 1e-12);
}

TEST_CASE("int64 tensors copy, convert and view, and compute ops refuse them", "[ops][int64]") {
    Tensor f = from_vector(std::vector<double>{3, -2, 7, 0}, {2, 2}, test::f64());
    Tensor i = to(f, DType::Int64);
    REQUIRE(i.dtype() == DType::Int64);
    REQUIRE(i.to_vector<int64_t>() == std::vector<int64_t>{3, -2, 7, 0});
    REQUIRE(transpose(i, 0, 1).to_vector<int64_t>() == std::vector<int64_t>{3, 7, -2, 0});
    REQUIRE(to(i, DType::Float32).to_vector() == std::vector<double>{3, -2, 7, 0});
    REQUIRE(full({2}, 5, TensorOptions{}.with_dtype(DType::Int64)).to_vector<int64_t>() == std::vector<int64_t>{5, 5});
    REQUIRE_THROWS_WITH(full({2}, 0.5, TensorOptions{}.with_dtype(DType::Int64)), "fill: 0.5 is not an int64 value");
    REQUIRE_THROWS_WITH(sum(i), "sum: expects a floating-point tensor, got int64 of shape [2,2]; convert it with to(dtype)");
    REQUIRE_THROWS_WITH(exp(i), "exp: expects a floating-point tensor, got int64 of shape [2,2]; convert it with to(dtype)");
    REQUIRE_THROWS_WITH(add(i, i), Catch::Contains("int64"));
    REQUIRE_THROWS_WITH(matmul(i, i), Catch::Contains("int64"));
}

TEST_CASE("reductions pass gradcheck, including non-contiguous inputs", "[ops][reduce]") {
    Tensor x = test::randn64({3, 4, 5}, 31);
    auto check = [&](std::function<Tensor(const Tensor&)> f) {
        LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return f(v[0]); }, {x});
        LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return f(permute(v[0], {2, 0, 1})); }, {x});
    };
    check([](const Tensor& t) { return sum(t); });
    check([](const Tensor& t) { return sum(t, {1}); });
    check([](const Tensor& t) { return sum(t, {0, 2}, true); });
    check([](const Tensor& t) { return mean(t, {-1}); });
    check([](const Tensor& t) { return mean(t); });
    check([](const Tensor& t) { return max(t, 1).values; });  // randn: no ties
    check([](const Tensor& t) { return max(t, 2, true).values; });
    check([](const Tensor& t) { return amax(t, 1); });
    check([](const Tensor& t) { return mul(sum(t, {0}), mean(t, {0})); });  // x used twice
    Tensor f = to(x.detach(), DType::Float32);
    LATTE_REQUIRE_CLOSE(to(sum(f, {1}), DType::Float64), sum(x.detach(), {1}), 1e-5, 1e-6);
    LATTE_REQUIRE_CLOSE(to(max(f, 0).values, DType::Float64), max(x.detach(), 0).values, 1e-6, 1e-7);
}

TEST_CASE("reductions reject bad dims", "[ops][errors]") {
    Tensor x = zeros({2, 3});
    REQUIRE_THROWS_WITH(sum(x, {2}), "sum: dim 2 out of range for a tensor of 2 dims");
    REQUIRE_THROWS_WITH(sum(x, {1, -1}), "sum: dim repeated in [1,-1]");
    REQUIRE_THROWS_WITH(max(zeros({0})), "max: empty tensor of shape [0]");
}
