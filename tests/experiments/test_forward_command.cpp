// `latte forward` against the independent per-head loop reference: outputs and every gradient
// (gradients of the reference by central differences of sum(reference * grad_out)).
#include <cstdio>
#include <functional>

#include "experiments/commands.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/reference_attention.h"

using namespace latte;

namespace {

// Plain-loop product of row-major (m, k) and (k, n) tensors, for MLA's W_UK W_DKV.
Tensor loop_matmul(const Tensor& a, const Tensor& b) {
    const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
    const auto va = a.to_vector(), vb = b.to_vector();
    std::vector<double> out(static_cast<size_t>(m * n), 0.0);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
            for (int64_t t = 0; t < k; ++t)
                out[static_cast<size_t>(i * n + j)] += va[static_cast<size_t>(i * k + t)] * vb[static_cast<size_t>(t * n + j)];
    return from_vector(out, {m, n}, test::f64());
}

// d/dinput of sum(f() * grad_out) for every element of `input`, by central differences.
Tensor numeric_grad(const std::function<Tensor()>& f, const Tensor& input, const Tensor& grad_out) {
    std::vector<double> g(static_cast<size_t>(input.numel()));
    double* data = input.data_ptr<double>();
    const double eps = 1e-6;
    for (size_t i = 0; i < g.size(); ++i) {
        const double saved = data[i];
        data[i] = saved + eps;
        const double plus = sum(mul(f(), grad_out)).item();
        data[i] = saved - eps;
        const double minus = sum(mul(f(), grad_out)).item();
        data[i] = saved;
        g[i] = (plus - minus) / (2 * eps);
    }
    return from_vector(g, input.shape(), test::f64());
}

void check_forward_command(nn::Attention& module, const std::function<Tensor(const Tensor&, const Tensor&,
                                                                             const std::map<std::string, Tensor>&)>& reference) {
    const std::string weights = "latte_test_fwd_weights.safetensors", inputs = "latte_test_fwd_inputs.safetensors",
                      out = "latte_test_fwd_out.safetensors";
    Tensor x = test::randn64({2, 2, module.input_width()}, 1, false);
    Tensor y = test::randn64({2, 3, module.context_width()}, 2, false);
    Tensor grad_out = test::randn64({2, 2, module.input_width()}, 3, false);
    nn::save(module, weights);
    nn::save_safetensors(inputs, {{"x", x}, {"y", y}, {"grad_out", grad_out}});
    experiments::run_forward(weights, inputs, out, DType::Float64);
    const nn::SafetensorsFile result = nn::load_safetensors(out);
    std::map<std::string, Tensor> got(result.tensors.begin(), result.tensors.end());
    std::map<std::string, Tensor> params;
    for (auto& [name, p] : module.named_parameters()) params[name] = clone(p.detach());

    auto f = [&] { return reference(x, y, params); };
    LATTE_REQUIRE_CLOSE(got.at("out"), f(), 1e-12, 1e-13);
    LATTE_REQUIRE_CLOSE(got.at("grad_x"), numeric_grad(f, x, grad_out), 1e-6, 1e-8);
    LATTE_REQUIRE_CLOSE(got.at("grad_y"), numeric_grad(f, y, grad_out), 1e-6, 1e-8);
    for (auto& [name, p] : params) {
        INFO("parameter " << name);
        LATTE_REQUIRE_CLOSE(got.at("grad." + name), numeric_grad(f, p, grad_out), 1e-6, 1e-8);
    }
    std::remove(weights.c_str());
    std::remove(inputs.c_str());
    std::remove(out.c_str());
}

}  // namespace

TEST_CASE("latte forward matches the per-head loop reference for MHA, GQA and MLA", "[experiments]") {
    Generator gen(3);
    SECTION("mha") {
        nn::MultiHeadAttention mha(4, 5, 2, 3, 2, gen, DType::Float64);
        check_forward_command(mha, [](const Tensor& x, const Tensor& y, const std::map<std::string, Tensor>& p) {
            return test::reference_attention(x, y, {p.at("W_Q.weight"), p.at("W_K.weight"), p.at("W_V.weight"), p.at("W_O.weight")}, 2, 2, false);
        });
    }
    SECTION("gqa") {
        nn::GroupedQueryAttention gqa(4, 5, 2, 3, 4, 2, gen, DType::Float64);
        check_forward_command(gqa, [](const Tensor& x, const Tensor& y, const std::map<std::string, Tensor>& p) {
            return test::reference_attention(x, y, {p.at("W_Q.weight"), p.at("W_K.weight"), p.at("W_V.weight"), p.at("W_O.weight")}, 4, 2, false);
        });
    }
    SECTION("mla") {
        nn::MultiHeadLatentAttention mla(4, 2, 2, 3, gen, DType::Float64);
        check_forward_command(mla, [](const Tensor& x, const Tensor& y, const std::map<std::string, Tensor>& p) {
            return test::reference_attention(x, y, {p.at("W_Q.weight"), loop_matmul(p.at("W_UK.weight"), p.at("W_DKV.weight")),
                                                    loop_matmul(p.at("W_UV.weight"), p.at("W_DKV.weight")), p.at("W_O.weight")}, 2, 2, false);
        });
    }
}

TEST_CASE("latte forward reports bad files clearly", "[experiments]") {
    Generator gen(4);
    nn::MultiHeadAttention mha(4, 4, 2, 2, 2, gen);
    nn::save_safetensors("latte_test_nometa.safetensors", mha.named_parameters());
    REQUIRE_THROWS_WITH(experiments::run_forward("latte_test_nometa.safetensors", "x", "y", DType::Float32),
                        "load: latte_test_nometa.safetensors: metadata has no 'module' (mha, gqa or mla)");
    nn::save(mha, "latte_test_w.safetensors");
    nn::save_safetensors("latte_test_in.safetensors", {{"x", zeros({1, 2, 4})}});
    REQUIRE_THROWS_WITH(experiments::run_forward("latte_test_w.safetensors", "latte_test_in.safetensors", "o", DType::Float32),
                        "latte forward: latte_test_in.safetensors needs tensors 'x' and 'y'");
    // Token ids are not activations: int64 inputs are refused, not converted.
    nn::save_safetensors("latte_test_in.safetensors",
                         {{"x", zeros({1, 2, 4}, TensorOptions{}.with_dtype(DType::Int64))}, {"y", zeros({1, 2, 4})}});
    REQUIRE_THROWS_WITH(experiments::run_forward("latte_test_w.safetensors", "latte_test_in.safetensors", "o", DType::Float32),
                        "latte forward: latte_test_in.safetensors: tensor 'x' is int64, expected float32 or float64");
    for (const char* f : {"latte_test_nometa.safetensors", "latte_test_w.safetensors", "latte_test_in.safetensors"}) std::remove(f);
}
