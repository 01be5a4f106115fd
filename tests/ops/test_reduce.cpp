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

TEST_CASE("max over a dim returns values and shares the gradient between ties", "[ops][reduce]") {
    Tensor x = from_vector(std::vector<double>{1, 5, 5, 2, -1, 0}, {2, 3}, test::f64(true));
    Tensor m = max(x, 1);
    REQUIRE(m.to_vector() == std::vector<double>{5, 2});
    REQUIRE(max(x, 0, true).shape() == Shape{1, 3});
    REQUIRE(max(x).item() == 5);
    sum(m).backward();
    REQUIRE(x.grad().to_vector() == std::vector<double>{0, 0.5, 0.5, 1, 0, 0});
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
    check([](const Tensor& t) { return max(t, 1); });  // randn: no ties
    check([](const Tensor& t) { return max(t, 2, true); });
    check([](const Tensor& t) { return mul(sum(t, {0}), mean(t, {0})); });  // x used twice
    Tensor f = to(x.detach(), DType::Float32);
    LATTE_REQUIRE_CLOSE(to(sum(f, {1}), DType::Float64), sum(x.detach(), {1}), 1e-5, 1e-6);
    LATTE_REQUIRE_CLOSE(to(max(f, 0), DType::Float64), max(x.detach(), 0), 1e-6, 1e-7);
}

TEST_CASE("reductions reject bad dims", "[ops][errors]") {
    Tensor x = zeros({2, 3});
    REQUIRE_THROWS_WITH(sum(x, {2}), "sum: dim 2 out of range for a tensor of 2 dims");
    REQUIRE_THROWS_WITH(sum(x, {1, -1}), "sum: dim repeated in [1,-1]");
    REQUIRE_THROWS_WITH(max(zeros({0})), "max: empty tensor of shape [0]");
}
