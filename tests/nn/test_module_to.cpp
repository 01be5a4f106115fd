// Module::to converts parameters in place: optimizers built before the call keep working, and
// optimizers refuse a parameter listed twice.
#include "nn/mha.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

// One Adam step on a fresh MHA converted to float64, with the optimizer built before or after.
std::vector<std::vector<double>> step_after_to(bool optimizer_first) {
    Generator gen(11);
    nn::MultiHeadAttention m(8, 8, 4, 4, 2, gen);
    std::unique_ptr<nn::Adam> opt;
    if (optimizer_first) opt = std::make_unique<nn::Adam>(m.parameters(), 0.05);
    m.to(DType::Float64);
    if (!optimizer_first) opt = std::make_unique<nn::Adam>(m.parameters(), 0.05);
    for (int step = 0; step < 3; ++step) {
        Tensor x = test::randn64({2, 5, 8}, 20 + step, false);
        opt->zero_grad();
        sum(mul(m.forward(x, x), m.forward(x, x))).backward();
        opt->step();
    }
    std::vector<std::vector<double>> values;
    for (const Tensor& p : m.parameters()) values.push_back(p.to_vector());
    return values;
}

}  // namespace

TEST_CASE("Module::to keeps parameter identity, so an optimizer built before steps them", "[nn][module_to]") {
    Generator gen(1);
    nn::MultiHeadAttention m(8, 8, 4, 4, 2, gen);
    const std::vector<Tensor> before = m.parameters();
    m.to(DType::Float64);
    const std::vector<Tensor> after = m.parameters();
    REQUIRE(before.size() == after.size());
    for (size_t i = 0; i < before.size(); ++i) {
        REQUIRE(before[i].same_as(after[i]));
        REQUIRE(before[i].dtype() == DType::Float64);
        REQUIRE(before[i].is_leaf());
        REQUIRE(before[i].requires_grad());
    }
    const auto first = step_after_to(true), second = step_after_to(false);
    REQUIRE(first == second);
    // The step moved the weights (an optimizer that stepped nothing would also give equal lists).
    Generator fresh(11);
    nn::MultiHeadAttention initial(8, 8, 4, 4, 2, fresh);
    REQUIRE(initial.parameters()[0].to_vector() != first[0]);
}

TEST_CASE("Module::to converts gradients and optimizer state with the parameters", "[nn][module_to]") {
    Generator gen(2);
    nn::MultiHeadAttention m(4, 4, 2, 2, 2, gen);
    nn::Adam opt(m.parameters(), 0.01);
    Tensor x = randn({1, 3, 4}, gen);
    sum(m.forward(x, x)).backward();
    opt.step();  // moments exist in float32
    m.to(DType::Float64);
    for (const Tensor& p : m.parameters()) REQUIRE(p.grad().dtype() == DType::Float64);
    opt.step();  // moments follow the parameters to float64
    for (const Tensor& p : m.parameters()) REQUIRE(p.dtype() == DType::Float64);
}

TEST_CASE("optimizers refuse a parameter listed twice", "[nn][optim]") {
    Tensor p = test::randn64({3}, 1);
    REQUIRE_THROWS_WITH(nn::SGD({p, p}, 1.0),
                        "optimizer: parameter 1 [3] is the same tensor as parameter 0 (or overlaps its memory); "
                        "list each parameter once");
    REQUIRE_THROWS_WITH(nn::Adam({p, test::randn64({2}, 2), p}, 1.0),
                        Catch::StartsWith("optimizer: parameter 2 [3] is the same tensor as parameter 0"));
    // Disjoint parameters are fine.
    nn::SGD ok({p, test::randn64({3}, 3)}, 1.0);
    REQUIRE(ok.params().size() == 2);
}

TEST_CASE("a graph built before Module::to refuses to deliver gradients of the old dtype", "[nn][module_to]") {
    // Found by an audit: the float32 gradient went into the float64 parameter and Adam read it as
    // doubles, past the end of the buffer.
    Generator gen(4);
    nn::Linear lin(8, 1, /*bias=*/true, gen);
    Tensor l = sum(lin.forward(ones({1, 8})));
    lin.to(DType::Float64);
    REQUIRE_THROWS_WITH(l.backward(), Catch::Contains("was converted in place (Module::to or set_data) after this "
                                                      "graph was built; run the forward again"));
    // A graph built after the conversion works.
    sum(lin.forward(ones({1, 8}, test::f64()))).backward();
    REQUIRE(lin.weight().grad().dtype() == DType::Float64);
    REQUIRE(lin.weight().grad().to_vector() == std::vector<double>(8, 1.0));
}
