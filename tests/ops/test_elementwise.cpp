#include <cmath>
#include <functional>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

struct UnaryCase {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::function<double(double)> reference;
    double low, high;  // input range away from kinks and domain edges
};

std::vector<UnaryCase> unary_cases() {
    return {
        {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }, -2, 2},
        {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, -2, 2},
        {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, 0.5, 3},
        {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0.5, 3},
        {"pow", [](const Tensor& x) { return pow(x, 2.5); }, [](double v) { return std::pow(v, 2.5); }, 0.5, 2},
        {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -2, 2},
        {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0; }, 0.1, 2},
        {"add_scalar", [](const Tensor& x) { return x + 1.5; }, [](double v) { return v + 1.5; }, -2, 2},
        {"sub_scalar", [](const Tensor& x) { return x - 1.5; }, [](double v) { return v - 1.5; }, -2, 2},
        {"mul_scalar", [](const Tensor& x) { return x * -3.0; }, [](double v) { return v * -3.0; }, -2, 2},
        {"div_scalar", [](const Tensor& x) { return x / 4.0; }, [](double v) { return v / 4.0; }, -2, 2},
        {"rsub_scalar", [](const Tensor& x) { return 2.0 - x; }, [](double v) { return 2.0 - v; }, -2, 2},
        {"rdiv_scalar", [](const Tensor& x) { return 2.0 / x; }, [](double v) { return 2.0 / v; }, 0.5, 2},
    };
}

struct BinaryCase {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
    std::function<double(double, double)> reference;
};

std::vector<BinaryCase> binary_cases() {
    return {
        {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }},
        {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }},
        {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }},
        {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; }},
    };
}

}  // namespace

TEST_CASE("unary ops match std:: math and pass gradcheck", "[ops][elementwise]") {
    for (const auto& c : unary_cases()) {
        SECTION(c.name) {
            Tensor x = test::uniform64({3, 4}, 11, c.low, c.high);
            const auto in = x.to_vector();
            const auto out = c.op(x).to_vector();
            for (size_t i = 0; i < in.size(); ++i) REQUIRE(out[i] == Approx(c.reference(in[i])).epsilon(1e-14));
            LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return c.op(v[0]); }, {x});
            // Non-contiguous input: a transposed view.
            LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return c.op(transpose(v[0], 0, 1)); }, {x});
            // float32 agrees with float64.
            LATTE_REQUIRE_CLOSE(to(c.op(to(x.detach(), DType::Float32)), DType::Float64), c.op(x.detach()), 1e-5, 1e-6);
        }
    }
}

TEST_CASE("binary ops broadcast like NumPy and pass gradcheck", "[ops][elementwise]") {
    for (const auto& c : binary_cases()) {
        SECTION(c.name) {
            Tensor a = test::uniform64({2, 3, 4}, 21, 0.5, 2.0);
            Tensor b = test::uniform64({3, 1}, 22, 0.5, 2.0);
            Tensor y = c.op(a, b), y_reversed = c.op(b, a);  // b broadcast along rows, on either side
            REQUIRE(y.shape() == Shape{2, 3, 4});
            const auto va = a.to_vector(), vb = b.to_vector(), vy = y.to_vector(), vr = y_reversed.to_vector();
            for (int64_t i = 0; i < 2; ++i)
                for (int64_t j = 0; j < 3; ++j)
                    for (int64_t k = 0; k < 4; ++k) {
                        const auto at = static_cast<size_t>((i * 3 + j) * 4 + k);
                        REQUIRE(vy[at] == Approx(c.reference(va[at], vb[static_cast<size_t>(j)])).epsilon(1e-14));
                        REQUIRE(vr[at] == Approx(c.reference(vb[static_cast<size_t>(j)], va[at])).epsilon(1e-14));
                    }
            auto f = [&](const std::vector<Tensor>& v) { return c.op(v[0], v[1]); };
            LATTE_REQUIRE_GRADCHECK(f, (std::vector<Tensor>{a, b}));
            // Same shapes, one operand a permuted view, the other an expanded one.
            Tensor p = test::uniform64({4, 3}, 23, 0.5, 2.0);
            Tensor s = test::uniform64({1, 4}, 24, 0.5, 2.0);
            LATTE_REQUIRE_GRADCHECK(
                [&](const std::vector<Tensor>& v) { return c.op(transpose(v[0], 0, 1), expand(v[1], {3, 4})); },
                (std::vector<Tensor>{p, s}));
            // The same tensor on both sides.
            LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return c.op(v[0], v[0]); },
                                    (std::vector<Tensor>{p}));
            LATTE_REQUIRE_CLOSE(to(c.op(to(a.detach(), DType::Float32), to(b.detach(), DType::Float32)), DType::Float64),
                                c.op(a.detach(), b.detach()), 1e-5, 1e-6);
        }
    }
}

TEST_CASE("large elementwise ops run threaded and agree with the serial loop", "[ops][elementwise]") {
    Generator gen(3);
    Tensor a = randn({300, 700}, gen, test::f64());
    Tensor b = randn({700}, gen, test::f64());
    Tensor y = tanh(a * b + 1.0);
    const auto va = a.to_vector(), vb = b.to_vector(), vy = y.to_vector();
    for (size_t i = 0; i < va.size(); i += 997) REQUIRE(vy[i] == Approx(std::tanh(va[i] * vb[i % 700] + 1.0)));
}

TEST_CASE("comparisons give 0/1 masks", "[ops][elementwise]") {
    Tensor a = from_vector(std::vector<double>{1, 2, 3}, {3});
    Tensor b = from_vector(std::vector<double>{2}, {1});
    REQUIRE(eq(a, b).to_vector() == std::vector<double>{0, 1, 0});
    REQUIRE(gt(a, b).to_vector() == std::vector<double>{0, 0, 1});
}

TEST_CASE("elementwise ops reject mismatched shapes, dtypes and undefined tensors", "[ops][errors]") {
    Tensor a = zeros({2, 3});
    REQUIRE_THROWS_WITH(add(a, zeros({4})), "add: shapes [2,3] and [4] cannot be broadcast (3 vs 4 at dim 1)");
    REQUIRE_THROWS_WITH(mul(a, zeros({2, 3}, test::f64())),
                        "mul: dtype mismatch (float32 [2,3] vs float64 [2,3]); convert one with to(dtype)");
    REQUIRE_THROWS_WITH(sub(Tensor(), a), "sub: argument 'a' is an undefined tensor");
    REQUIRE_THROWS_WITH(div(a, 0.0), "div: division of tensor [2,3] by scalar zero");
}
