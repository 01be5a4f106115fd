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
            // The reference: PyTorch's rules as tensor ops.
            Tensor g = grad;
            if (decoupled) ref = mul(ref, 1 - lr * options.weight_decay);
            else g = add(g, mul(ref, options.weight_decay));
            m = add(mul(m, options.beta1), mul(g, 1 - options.beta1));
            v = add(mul(v, options.beta2), mul(mul(g, g), 1 - options.beta2));
            const double bias1 = 1 - std::pow(options.beta1, t), bias2 = 1 - std::pow(options.beta2, t);
            ref = sub(ref, mul(div(m, add(sqrt(mul(v, 1 / bias2)), options.eps)), lr / bias1));
            LATTE_REQUIRE_CLOSE(p, ref, 1e-13, 1e-14);
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
