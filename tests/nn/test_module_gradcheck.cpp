// nn::gradcheck_module: passes on the attention modules, names the parameter and index of a
// wrong gradient, and leaves parameters' values and gradients as they were (ops' gradcheck too).
#include <stdexcept>

#include "core/node.h"
#include "nn/gqa.h"
#include "nn/gradcheck.h"
#include "nn/linear.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

// Identity forward; the backward zeroes the gradient of element [1,2], as a buggy op might.
Tensor drops_one_gradient(const Tensor& w) {
    Tensor out = w.detach();
    if (needs_graph({w})) {
        record(out, "drops_one_gradient", {w}, [](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            Tensor grad = clone(g);
            Tensor element = grad.as_strided({}, {}, grad.offset() + grad.strides()[0] + 2 * grad.strides()[1]);
            backend_for(grad.device()).fill(element.view(), 0.0);
            return {grad};
        });
    }
    return out;
}

// A correct parameter `scale`, then W_Q whose weight reaches the output through the broken op.
class BrokenProjection : public nn::Module {
public:
    explicit BrokenProjection(Generator& gen) {
        register_parameter("scale", randn({4}, gen, test::f64()));
        W_Q = register_module("W_Q", std::make_shared<nn::Linear>(3, 4, false, gen, DType::Float64));
    }
    Tensor forward(const Tensor& x) const {
        return mul(matmul(x, transpose(drops_one_gradient(W_Q->weight()), 0, 1)), param("scale"));
    }
    std::shared_ptr<nn::Linear> W_Q;
};

// Values and gradients (undefined ones as empty) of every parameter.
std::vector<std::vector<double>> snapshot(const nn::Module& module) {
    std::vector<std::vector<double>> out;
    for (const Tensor& p : module.parameters()) {
        out.push_back(p.to_vector<double>());
        out.push_back(p.grad().defined() ? p.grad().to_vector<double>() : std::vector<double>{});
    }
    return out;
}

}  // namespace

TEST_CASE("gradcheck_module passes on MHA, GQA and MLA in float64", "[nn][gradcheck]") {
    Generator gen(21);
    const int64_t D = 6, H = 3, d = 2;
    const Tensor x = test::randn64({2, 3, D}, 40, false), y = test::randn64({2, 4, D}, 41, false);
    nn::MultiHeadAttention mha(D, D, d, d, H, gen, DType::Float64);
    nn::GroupedQueryAttention gqa(D, D, d, d, H, 1, gen, DType::Float64);
    nn::MultiHeadLatentAttention mla(D, H, d, 3, gen, DType::Float64);
    const std::vector<std::pair<const char*, nn::Attention*>> modules = {{"mha", &mha}, {"gqa", &gqa}, {"mla", &mla}};
    for (const auto& [name, module] : modules) {
        for (bool causal : {false, true}) {
            INFO(name << (causal ? " causal" : ""));
            const GradcheckResult result =
                nn::gradcheck_module(*module, [&](nn::Attention& m) { return m(x, y, causal); });
            INFO(result.message);
            REQUIRE(result.ok);
        }
    }
}

TEST_CASE("gradcheck_module names the parameter and index of a wrong gradient", "[nn][gradcheck]") {
    Generator gen(22);
    BrokenProjection module(gen);
    const Tensor x = test::randn64({5, 3}, 42, false);
    const GradcheckResult result = nn::gradcheck_module(module, [&](BrokenProjection& m) { return m.forward(x); });
    REQUIRE_FALSE(result.ok);
    REQUIRE_THAT(result.message, Catch::StartsWith("gradcheck: W_Q.weight[1,2]: analytic 0 vs numeric "));
}

TEST_CASE("gradcheck_module refuses a float32 module, naming the parameter", "[nn][gradcheck]") {
    Generator gen(23);
    nn::MultiHeadAttention mha(4, 4, 2, 2, 2, gen);
    const Tensor x = randn({1, 2, 4}, gen);
    REQUIRE_THROWS_WITH(nn::gradcheck_module(mha, [&](nn::MultiHeadAttention& m) { return m(x, x); }),
                        "gradcheck_module: W_Q.weight is float32; finite differences need float64");
}

TEST_CASE("gradcheck_module leaves parameters' values and gradients as they were", "[nn][gradcheck]") {
    Generator gen(24);
    nn::MultiHeadAttention mha(4, 4, 2, 2, 2, gen, DType::Float64);
    const Tensor x = test::randn64({2, 3, 4}, 43, false);
    auto loss = [&](nn::MultiHeadAttention& m) { return m(x, x); };
    mha(x, x).backward(ones({2, 3, 4}, test::f64()));
    Tensor(mha.W_O->weight()).zero_grad();  // one parameter without a gradient: it must stay without
    const Tensor held = mha.W_Q->weight().grad();
    const std::vector<double> held_values = held.to_vector<double>();
    const auto before = snapshot(mha);
    REQUIRE(before[7].empty());

    REQUIRE(nn::gradcheck_module(mha, loss).ok);
    REQUIRE(snapshot(mha) == before);
    REQUIRE(held.to_vector<double>() == held_values);  // a gradient handle the caller holds is untouched

    SECTION("also when the loss throws part way through the finite differences") {
        int calls = 0;
        auto throws_third_time = [&](nn::MultiHeadAttention& m) {
            if (++calls == 3) throw std::runtime_error("loss failed");  // 1: probe, 2: backward, 3: a perturbed value
            return m(x, x);
        };
        REQUIRE_THROWS_WITH(nn::gradcheck_module(mha, throws_third_time), "loss failed");
        REQUIRE(snapshot(mha) == before);
    }
}

TEST_CASE("gradcheck leaves its inputs' gradients as they were", "[ops][gradcheck]") {
    Tensor a = test::randn64({2, 3}, 44), b = test::randn64({3}, 45);
    sum(mul(a, 3.0)).backward();
    const std::vector<double> a_grad = a.grad().to_vector<double>();
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return softmax(mul(v[0], v[1]), -1); }, {a, b});
    REQUIRE(a.grad().to_vector<double>() == a_grad);
    REQUIRE_FALSE(b.grad().defined());
}
