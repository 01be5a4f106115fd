#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/autograd.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/optim.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

Tensor param_with_grad(std::vector<double> value, std::vector<double> grad) {
    Tensor p = from_vector(value, {static_cast<int64_t>(value.size())}, test::f64(true));
    p.set_grad(from_vector(grad, {static_cast<int64_t>(grad.size())}, test::f64()));
    return p;
}


}  // namespace

TEST_CASE("SGD with momentum follows PyTorch's update by hand", "[nn][optim]") {
    Tensor p = param_with_grad({1.0, -2.0}, {0.5, 1.0});
    SGD opt({p}, 0.1, SGDOptions{0.9, 0.0, 0.01, false});
    opt.step();  // g = grad + 0.01 p = (0.51, 0.98); buf = g; p -= 0.1 g
    REQUIRE(p.to_vector()[0] == Approx(1.0 - 0.051).epsilon(1e-14));
    REQUIRE(p.to_vector()[1] == Approx(-2.0 - 0.098).epsilon(1e-14));
    p.set_grad(from_vector(std::vector<double>{0.5, 1.0}, {2}, test::f64()));
    opt.step();  // g = 0.5 + 0.01*0.949 = 0.50949; buf = 0.9*0.51 + 0.50949
    REQUIRE(p.to_vector()[0] == Approx(0.949 - 0.1 * (0.9 * 0.51 + 0.50949)).epsilon(1e-14));
}

TEST_CASE("Adam and AdamW follow PyTorch's update by hand", "[nn][optim]") {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    Tensor p = param_with_grad({1.0}, {0.5});
    Adam adam({p}, lr);
    adam.step();  // first step: m_hat = g, v_hat = g^2 -> p -= lr * g / (|g| + eps)
    REQUIRE(p.item() == Approx(1.0 - lr * 0.5 / (0.5 + eps)).epsilon(1e-14));
    p.set_grad(from_vector(std::vector<double>{-0.25}, {1}, test::f64()));
    adam.step();
    const double m = b1 * (1 - b1) * 0.5 + (1 - b1) * -0.25, v = b2 * (1 - b2) * 0.25 + (1 - b2) * 0.0625;
    const double m_hat = m / (1 - b1 * b1), v_hat = v / (1 - b2 * b2);
    REQUIRE(p.item() == Approx(1.0 - lr * 0.5 / (0.5 + eps) - lr * m_hat / (std::sqrt(v_hat) + eps)).epsilon(1e-13));

    Tensor q = param_with_grad({2.0}, {0.5});
    AdamW adamw({q}, lr);  // weight_decay 0.01: q *= 1 - lr*wd first
    adamw.step();
    REQUIRE(q.item() == Approx(2.0 * (1 - lr * 0.01) - lr * 0.5 / (0.5 + eps)).epsilon(1e-14));
}

namespace {

// PyTorch's single-tensor Adam / AdamW (torch/optim/adam.py, _single_tensor_adam) on plain doubles:
// state['step'] is per parameter and only advances for a parameter that has a gradient.
struct ReferenceAdam {
    double lr, beta1, beta2, eps, weight_decay;
    bool decoupled;
    struct State {
        int64_t step = 0;
        std::vector<double> exp_avg, exp_avg_sq;
    };
    std::vector<State> state;

    // grads[i] empty: parameter i has no gradient at this step and is skipped entirely.
    void step(std::vector<std::vector<double>>& params, const std::vector<std::vector<double>>& grads) {
        state.resize(params.size());
        for (size_t i = 0; i < params.size(); ++i) {
            if (grads[i].empty()) continue;
            State& s = state[i];
            if (s.step == 0) s.exp_avg = s.exp_avg_sq = std::vector<double>(params[i].size(), 0.0);
            s.step += 1;
            const double bias1 = 1 - std::pow(beta1, double(s.step)), bias2 = 1 - std::pow(beta2, double(s.step));
            const double step_size = lr / bias1, bias2_sqrt = std::sqrt(bias2);
            for (size_t k = 0; k < params[i].size(); ++k) {
                double& p = params[i][k];
                double g = grads[i][k];
                if (decoupled) p *= 1 - lr * weight_decay;
                else g += weight_decay * p;
                s.exp_avg[k] = beta1 * s.exp_avg[k] + (1 - beta1) * g;
                s.exp_avg_sq[k] = beta2 * s.exp_avg_sq[k] + (1 - beta2) * g * g;
                const double denom = std::sqrt(s.exp_avg_sq[k]) / bias2_sqrt + eps;
                p -= step_size * s.exp_avg[k] / denom;
            }
        }
    }
};

}  // namespace

TEST_CASE("Adam and AdamW count steps per parameter: one that had no gradient starts its bias correction late",
          "[nn][optim]") {
    // p1 gets a gradient at every step, p2 only from step 3 on (loss sum(p1^2) [+ sum(p2^2)]).
    for (bool decoupled : {false, true}) {
        CAPTURE(decoupled);
        const double lr = 0.1, wd = decoupled ? 0.01 : 0.02;
        const std::vector<double> init1{1.0, -0.5, 2.0}, init2{1.0, 0.25};
        Tensor p1 = from_vector(init1, {3}, test::f64(true)), p2 = from_vector(init2, {2}, test::f64(true));
        Adam adam({p1, p2}, lr, AdamOptions{0.9, 0.999, 1e-8, wd}, decoupled);
        ReferenceAdam ref{lr, 0.9, 0.999, 1e-8, wd, decoupled, {}};
        std::vector<std::vector<double>> values{init1, init2};
        for (int step = 1; step <= 4; ++step) {
            CAPTURE(step);
            adam.zero_grad();
            Tensor loss = sum(mul(p1, p1));
            if (step >= 3) loss = add(loss, sum(mul(p2, p2)));
            loss.backward();
            REQUIRE(p2.grad().defined() == (step >= 3));
            std::vector<std::vector<double>> grads(2);
            for (size_t i = 0; i < 2; ++i)
                if (step >= 3 || i == 0)
                    for (double x : values[i]) grads[i].push_back(2 * x);
            adam.step();
            ref.step(values, grads);
            REQUIRE(adam.steps() == step);
            REQUIRE(adam.steps(0) == step);
            REQUIRE(adam.steps(1) == std::max(0, step - 2));
            for (size_t i = 0; i < 2; ++i) {
                const std::vector<double> got = (i == 0 ? p1 : p2).to_vector();
                for (size_t k = 0; k < got.size(); ++k) REQUIRE(got[k] == Approx(values[i][k]).epsilon(1e-12));
            }
        }
        // p2 took 2 steps, so its first update was a full (bias-corrected) one: about lr per element.
        REQUIRE(std::abs(values[1][0] - init2[0]) > 1.5 * lr);
    }
}

namespace {

// Step t of PyTorch's Adam (decoupled: AdamW) written as tensor ops on float64: the reference the
// fused update is checked against.
void adam_reference_step(Tensor& ref, Tensor& m, Tensor& v, const Tensor& grad, const AdamOptions& options, double lr,
                         int t, bool decoupled) {
    Tensor g = grad;
    if (decoupled) ref = mul(ref, 1 - lr * options.weight_decay);
    else g = add(g, mul(ref, options.weight_decay));
    m = add(mul(m, options.beta1), mul(g, 1 - options.beta1));
    v = add(mul(v, options.beta2), mul(mul(g, g), 1 - options.beta2));
    const double bias1 = 1 - std::pow(options.beta1, t), bias2 = 1 - std::pow(options.beta2, t);
    ref = sub(ref, mul(div(m, add(sqrt(mul(v, 1 / bias2)), options.eps)), lr / bias1));
}

}  // namespace

TEST_CASE("the fused Adam update equals the update written as separate ops", "[nn][optim]") {
    for (bool decoupled : {false, true}) {
        CAPTURE(decoupled);
        const AdamOptions options{0.8, 0.99, 1e-6, 0.05};
        const double lr = 0.03;
        Tensor p = test::randn64({4, 5}, 20), ref = clone(p.detach());
        Tensor m = zeros_like(ref), v = zeros_like(ref);
        Adam adam({p}, lr, options, decoupled);
        for (int t = 1; t <= 4; ++t) {
            const Tensor grad = test::randn64({4, 5}, 30 + t, false);
            p.set_grad(grad);
            adam.step();
            adam_reference_step(ref, m, v, grad, options, lr, t, decoupled);
            LATTE_REQUIRE_CLOSE(p, ref, 1e-13, 1e-14);
        }
    }
    // float32 parameters update in float32 arithmetic (as PyTorch's fused CPU Adam), vectorized:
    // 1000 elements cover the vector loops and their remainders; the float64 rules as reference.
    for (bool decoupled : {false, true}) {
        CAPTURE(decoupled);
        const AdamOptions options{0.9, 0.999, 1e-8, 0.1};
        const double lr = 0.01;
        Tensor ref = test::randn64({1000}, 50, false);
        Tensor p = to(ref, DType::Float32).requires_grad_();
        Tensor m = zeros_like(ref), v = zeros_like(ref);
        Adam adam({p}, lr, options, decoupled);
        for (int t = 1; t <= 5; ++t) {
            const Tensor grad = test::randn64({1000}, 60 + t, false);
            p.set_grad(to(grad, DType::Float32));
            adam.step();
            adam_reference_step(ref, m, v, grad, options, lr, t, decoupled);
            // Each step moves p by about lr: float32 rounding of p (|p| < 5) and of the step.
            LATTE_REQUIRE_CLOSE(to(p.detach(), DType::Float64), ref, 1e-6, 1e-6);
        }
    }
    Tensor view = transpose(test::randn64({4, 5}, 40, false), 0, 1).detach().requires_grad_();  // a strided leaf
    Adam bad({view}, 0.1);
    view.set_grad(zeros({5, 4}, test::f64()));
    REQUIRE_THROWS_WITH(bad.step(), Catch::Contains("is a non-contiguous view"));
}

TEST_CASE("gradient clipping and the warmup-cosine schedule", "[nn][optim]") {
    Tensor a = param_with_grad({0, 0}, {3, 0}), b = param_with_grad({0}, {4});
    REQUIRE(clip_grad_norm_({a, b}, 1.0) == Approx(5.0));
    REQUIRE(a.grad().to_vector()[0] == Approx(3.0 / (5.0 + 1e-6)));
    REQUIRE(b.grad().item() == Approx(4.0 / (5.0 + 1e-6)));
    REQUIRE(clip_grad_norm_({a, b}, 10.0) == Approx(1.0).epsilon(1e-5));  // below max: untouched
    WarmupCosine schedule(1.0, 10, 110, 0.1);
    REQUIRE(schedule.lr_at(0) == Approx(0.1));
    REQUIRE(schedule.lr_at(9) == Approx(1.0));
    REQUIRE(schedule.lr_at(60) == Approx(0.55));
    REQUIRE(schedule.lr_at(110) == Approx(0.1));
    REQUIRE_THROWS_WITH(WarmupCosine(1.0, 10, 10), "WarmupCosine: need 0 <= warmup (10) < total (10)");
}

TEST_CASE("training with Adam fits a small teacher", "[nn][optim]") {
    Generator gen(3);
    GroupedQueryAttention teacher(8, 8, 2, 2, 4, 2, gen), student(8, 8, 2, 2, 4, 2, gen);
    Tensor x = randn({4, 5, 8}, gen), y = randn({4, 6, 8}, gen);
    Tensor target;
    {
        NoGradGuard no_grad;
        target = teacher(x, y);
    }
    Adam opt(student.parameters(), 1e-2);
    const double first = mse_loss(student(x, y), target).item();
    double last = first;
    for (int i = 0; i < 150; ++i) {
        Tensor loss = mse_loss(student(x, y), target);
        opt.zero_grad();
        loss.backward();
        opt.step();
        last = loss.item();
    }
    REQUIRE(last < 0.1 * first);
}

TEST_CASE("safetensors round-trips modules and metadata", "[nn][serialize]") {
    Generator gen(4);
    MultiHeadAttention a(8, 6, 2, 3, 2, gen, DType::Float64), b(8, 6, 2, 3, 2, gen, DType::Float64);
    const std::string path = test::temp_path("roundtrip.safetensors");
    save(a, path);
    const SafetensorsFile file = load_safetensors(path);
    REQUIRE(file.metadata.at("module") == "mha");
    REQUIRE(file.metadata.at("D_2") == "6");
    REQUIRE(file.tensors.size() == 4);
    REQUIRE(file.tensors[0].first == "W_Q.weight");
    load(b, path);
    for (size_t i = 0; i < 4; ++i) LATTE_REQUIRE_CLOSE(b.parameters()[i], a.parameters()[i], 0, 0);
    // Loading into float32 parameters converts.
    MultiHeadAttention c(8, 6, 2, 3, 2, gen);
    load(c, path);
    LATTE_REQUIRE_CLOSE(to(c.parameters()[2], DType::Float64), a.parameters()[2], 1e-6, 1e-7);
    std::remove(path.c_str());
}

TEST_CASE("corrupt, truncated and mismatched weight files give clear errors and load nothing", "[nn][serialize]") {
    Generator gen(5);
    MultiHeadAttention a(8, 6, 2, 3, 2, gen);
    const std::string path = test::temp_path("bad.safetensors");
    save(a, path);
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto write = [&](const std::string& content) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << content;
    };
    MultiHeadAttention b(8, 6, 2, 3, 2, gen);
    const auto before = b.parameters()[0].to_vector();

    write(bytes.substr(0, bytes.size() - 10));
    REQUIRE_THROWS_WITH(load(b, path), Catch::Contains("truncated file?"));
    write(bytes.substr(0, 5));
    REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("too short for a safetensors header"));
    std::string huge = bytes;
    huge[0] = '\xff';
    huge[1] = '\xff';
    write(huge);
    REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("exceeds the file"));
    std::string garbled = bytes;
    garbled[9] = '#';
    write(garbled);
    REQUIRE_THROWS_WITH(load_safetensors(path), Catch::Contains("invalid JSON header"));
    REQUIRE_THROWS_WITH(load_safetensors("no_such_file.safetensors"), "load_safetensors: cannot open 'no_such_file.safetensors'");

    // A module of another shape: refused, and b is left as it was.
    MultiHeadAttention other(8, 6, 2, 3, 4, gen);
    save(other, path);
    REQUIRE_THROWS_WITH(load(b, path), Catch::Contains("tensor 'W_Q.weight' has shape [8,8], the module expects [4,8]"));
    GroupedQueryAttention gqa(8, 6, 2, 3, 2, 1, gen);
    save(gqa, path);
    REQUIRE_THROWS_WITH(load(b, path), Catch::Contains("tensor 'W_K.weight' has shape [2,6], the module expects [4,6]"));
    REQUIRE(b.parameters()[0].to_vector() == before);
    std::remove(path.c_str());
}
