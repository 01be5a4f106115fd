// Optimizer state_dict / load_state_dict: a restored optimizer takes exactly the steps the
// original would have, also through a safetensors file; mismatches are errors that change nothing.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>

#include "core/autograd.h"
#include "nn/optim.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

std::vector<Tensor> make_params(uint64_t seed) {
    return {test::randn64({3, 4}, seed), test::randn64({5}, seed + 1)};
}

// Gradients that depend on the step and on the parameter values, like real ones.
void set_grads(std::vector<Tensor>& params, int step) {
    for (size_t i = 0; i < params.size(); ++i) {
        Tensor g = add(mul(params[i].detach(), 0.5), test::randn64(params[i].shape(), 100 + step * 7 + i, false));
        params[i].set_grad(g);
    }
}

bool same_bytes(const Tensor& a, const Tensor& b) {
    const Tensor ca = contiguous(a), cb = contiguous(b);
    return ca.shape() == cb.shape() && ca.dtype() == cb.dtype() &&
           std::memcmp(ca.view().data, cb.view().data, ca.numel() * dtype_size(ca.dtype())) == 0;
}

// Steps an optimizer 3 times, restores its state into a fresh one over copies of the weights
// (through a file when `via_file`), then steps both 2 more times: the weights agree to the bit.
void check_round_trip(const MakeOptimizer& make, bool via_file) {
    std::vector<Tensor> a = make_params(1);
    auto opt_a = make(a);
    for (int step = 0; step < 3; ++step) {
        set_grads(a, step);
        opt_a->step();
    }
    std::vector<Tensor> b = make_params(50);  // other values and state: everything must come from the load
    auto copy_weights = [&] {
        NoGradGuard no_grad;
        for (size_t i = 0; i < a.size(); ++i) copy_(b[i], a[i]);
    };
    copy_weights();
    auto opt_b = make(b);
    set_grads(b, 9);
    opt_b->step();
    OptimizerState state = opt_a->state_dict();
    if (via_file) {
        const std::string path = test::temp_path("optim_state.safetensors");
        save_safetensors(path, state.tensors, state.metadata);
        const SafetensorsFile file = load_safetensors(path);
        std::remove(path.c_str());
        state = {file.tensors, file.metadata};
    }
    copy_weights();
    opt_b->load_state_dict(state);
    REQUIRE(opt_b->lr() == opt_a->lr());
    for (int step = 3; step < 5; ++step) {
        set_grads(a, step);
        set_grads(b, step);
        opt_a->step();
        opt_b->step();
    }
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(same_bytes(a[i], b[i]));
}

MakeOptimizer sgd() {
    return [](std::vector<Tensor> p) {
        return std::make_unique<SGD>(std::move(p), 0.05, SGDOptions{0.9, 0.1, 0.01, false});
    };
}
MakeOptimizer adam() {
    return [](std::vector<Tensor> p) { return std::make_unique<Adam>(std::move(p), 0.01, AdamOptions{0.8, 0.99, 1e-6, 0.02}); };
}
MakeOptimizer adamw() { return [](std::vector<Tensor> p) { return std::make_unique<AdamW>(std::move(p), 0.01); }; }

}  // namespace

TEST_CASE("SGD, Adam and AdamW restored from state_dict take identical next steps", "[nn][optim][checkpoint]") {
    for (const auto& [name, make] : {std::pair{"sgd", sgd()}, {"adam", adam()}, {"adamw", adamw()}})
        for (bool via_file : {false, true}) {
            CAPTURE(name, via_file);
            check_round_trip(make, via_file);
        }
}

TEST_CASE("state_dict holds the buffers, the step count and the hyperparameters as exact text", "[nn][optim][checkpoint]") {
    std::vector<Tensor> p = make_params(1);
    Adam opt(p, 0.1 + 0.2, AdamOptions{0.8, 0.99, 1e-6, 0.02});  // 0.30000000000000004 must survive as text
    set_grads(p, 0);
    opt.step();
    const OptimizerState s = opt.state_dict();
    REQUIRE(s.metadata == std::map<std::string, std::string>{{"kind", "adam"}, {"params", "2"},
                                                             {"lr", "0.30000000000000004"}, {"beta1", "0.8"},
                                                             {"beta2", "0.99"}, {"eps", "1e-06"},
                                                             {"weight_decay", "0.02"}, {"step", "1"},
                                                             {"step.0", "1"}, {"step.1", "1"}});
    REQUIRE(s.tensors.size() == 4);
    REQUIRE(s.tensors[0].first == "exp_avg.0");
    REQUIRE(s.tensors[3].first == "exp_avg_sq.1");
    // A copy: the next step does not change it.
    const Tensor before = clone(s.tensors[0].second);
    set_grads(p, 1);
    opt.step();
    REQUIRE(same_bytes(before, s.tensors[0].second));

    SGD fresh(make_params(1), 0.1, SGDOptions{0.9});
    REQUIRE(fresh.state_dict().tensors.empty());  // no momentum buffers before the first step
    REQUIRE(fresh.state_dict().metadata.at("nesterov") == "false");
}

TEST_CASE("load_state_dict refuses a mismatched state and leaves the optimizer unchanged", "[nn][optim][checkpoint]") {
    std::vector<Tensor> p = make_params(1);
    Adam source(p, 0.01);
    set_grads(p, 0);
    source.step();
    const OptimizerState good = source.state_dict();

    std::vector<Tensor> q = make_params(1);
    Adam target(q, 0.02);
    auto refused = [&](const OptimizerState& s, const std::string& message) {
        REQUIRE_THROWS_WITH(target.load_state_dict(s), message);
        REQUIRE(target.lr() == 0.02);
        REQUIRE(target.steps() == 0);
        REQUIRE(target.state_dict().tensors.empty());
    };

    OptimizerState s = good;
    s.metadata["kind"] = "adamw";
    refused(s, "adam load_state_dict: the state is of a adamw optimizer, this one is adam");
    SGD sgd_opt(make_params(1), 0.1);
    REQUIRE_THROWS_WITH(sgd_opt.load_state_dict(good),
                        "sgd load_state_dict: the state is of a adam optimizer, this one is sgd");

    s = good;
    s.metadata["params"] = "3";
    refused(s, "adam load_state_dict: the state is for 3 parameters, this optimizer has 2");
    s = good;
    s.metadata.erase("beta2");
    refused(s, "adam load_state_dict: no 'beta2' entry");
    s = good;
    s.metadata["beta1"] = "1.5";
    refused(s, "Adam: betas must be in [0, 1), got 1.5, 0.999");
    s = good;
    s.metadata["step"] = "two";
    refused(s, "adam load_state_dict: 'step' is 'two', not an integer");
    s = good;
    s.metadata["momentum"] = "0.9";
    refused(s, "adam load_state_dict: unexpected metadata entry 'momentum'");

    s = good;
    s.tensors[1].second = zeros({4}, TensorOptions{}.with_dtype(DType::Float64));
    refused(s, "adam load_state_dict: tensor 'exp_avg.1' has shape [4], parameter 1 has shape [5]");
    s = good;
    s.tensors[0].second = zeros({3, 4});
    refused(s, "adam load_state_dict: tensor 'exp_avg.0' is float32, parameter 0 is float64");
    s = good;
    s.tensors[0].first = "momentum_buffer.0";
    refused(s, "adam load_state_dict: unexpected tensor 'momentum_buffer.0' (expected <buffer>.<parameter index> "
               "with buffer exp_avg, exp_avg_sq and index below 2)");
    s = good;
    s.tensors[0].first = "exp_avg.7";
    refused(s, "adam load_state_dict: unexpected tensor 'exp_avg.7' (expected <buffer>.<parameter index> with buffer "
               "exp_avg, exp_avg_sq and index below 2)");
    s = good;
    s.tensors[1].first = "exp_avg.0";
    refused(s, "adam load_state_dict: tensor 'exp_avg.0' appears twice");
    s = good;
    s.tensors.erase(s.tensors.begin() + 3);  // exp_avg_sq.1
    refused(s, "adam load_state_dict: exp_avg.1 is present but exp_avg_sq.1 is missing");

    target.load_state_dict(good);  // the unchanged good state still loads
    REQUIRE(target.steps() == 1);
    REQUIRE(target.lr() == 0.01);
}

TEST_CASE("load_state_dict refuses nan or inf buffers and a negative exp_avg_sq, naming the tensor and index",
          "[nn][optim][checkpoint]") {
    std::vector<Tensor> p = make_params(1);
    Adam source(p, 0.01);
    set_grads(p, 0);
    source.step();
    const OptimizerState good = source.state_dict();
    std::vector<Tensor> q = make_params(1);
    Adam target(q, 0.02);
    auto with = [&](size_t which, int64_t index, double value) {
        OptimizerState s = good;
        Tensor t = clone(s.tensors[which].second);
        std::vector<double> v = t.to_vector();
        v[static_cast<size_t>(index)] = value;
        s.tensors[which].second = from_vector(v, t.shape(), test::f64());
        return s;
    };
    // good.tensors: exp_avg.0, exp_avg.1, exp_avg_sq.0, exp_avg_sq.1
    REQUIRE_THROWS_WITH(target.load_state_dict(with(0, 5, std::nan(""))),
                        "adam load_state_dict: tensor 'exp_avg.0' holds nan at index [1, 1]");
    REQUIRE_THROWS_WITH(target.load_state_dict(with(1, 2, -INFINITY)),
                        "adam load_state_dict: tensor 'exp_avg.1' holds -inf at index [2]");
    REQUIRE_THROWS_WITH(target.load_state_dict(with(2, 0, INFINITY)),
                        "adam load_state_dict: tensor 'exp_avg_sq.0' holds inf at index [0, 0]");
    REQUIRE_THROWS_WITH(target.load_state_dict(with(3, 4, -0.5)),
                        "adam load_state_dict: tensor 'exp_avg_sq.1' holds -0.5 at index [4] (exp_avg_sq must be "
                        "non-negative)");
    REQUIRE(target.state_dict().tensors.empty());  // nothing was loaded
    REQUIRE(target.lr() == 0.02);

    std::vector<Tensor> r = make_params(2);
    SGD sgd_source(r, 0.1, SGDOptions{0.9});
    set_grads(r, 0);
    sgd_source.step();
    OptimizerState momentum = sgd_source.state_dict();
    momentum.tensors[0].second = full({3, 4}, std::nan(""), test::f64());
    SGD sgd_target(make_params(2), 0.1, SGDOptions{0.9});
    REQUIRE_THROWS_WITH(sgd_target.load_state_dict(momentum),
                        "sgd load_state_dict: tensor 'momentum_buffer.0' holds nan at index [0, 0]");
    OptimizerState bad_lr = good;
    bad_lr.metadata["lr"] = "-1";
    REQUIRE_THROWS_WITH(target.load_state_dict(bad_lr),
                        "adam load_state_dict: learning rate must be finite and non-negative, got -1");
}

TEST_CASE("optimizer hyperparameters and set_lr must be finite and non-negative", "[nn][optim]") {
    const double nan = std::nan("");
    REQUIRE_THROWS_WITH(Adam(make_params(1), nan), "optimizer: learning rate must be finite and non-negative, got nan");
    REQUIRE_THROWS_WITH(SGD(make_params(1), INFINITY), "optimizer: learning rate must be finite and non-negative, got inf");
    Adam adam(make_params(1), 0.01);
    REQUIRE_THROWS_WITH(adam.set_lr(nan), "adam set_lr: learning rate must be finite and non-negative, got nan");
    REQUIRE_THROWS_WITH(adam.set_lr(-0.1), "adam set_lr: learning rate must be finite and non-negative, got -0.1");
    REQUIRE(adam.lr() == 0.01);
    adam.set_lr(0);
    REQUIRE(adam.lr() == 0);
    REQUIRE_THROWS_WITH(Adam(make_params(1), 0.1, AdamOptions{0.9, 0.999, 1e-8, nan}),
                        "Adam: weight_decay must be finite and non-negative, got nan");
    REQUIRE_THROWS_WITH(AdamW(make_params(1), 0.1, AdamOptions{0.9, 0.999, 1e-8, -0.01}),
                        "Adam: weight_decay must be finite and non-negative, got -0.01");
    REQUIRE_THROWS_WITH(Adam(make_params(1), 0.1, AdamOptions{0.9, 0.999, INFINITY, 0}),
                        "Adam: eps must be finite and non-negative, got inf");
    REQUIRE_THROWS_WITH(SGD(make_params(1), 0.1, SGDOptions{nan}), "SGD: momentum must be finite and non-negative, got nan");
    REQUIRE_THROWS_WITH(SGD(make_params(1), 0.1, SGDOptions{-0.9}),
                        "SGD: momentum must be finite and non-negative, got -0.9");
    REQUIRE_THROWS_WITH(SGD(make_params(1), 0.1, SGDOptions{0.9, -1}),
                        "SGD: dampening must be finite and non-negative, got -1");
    REQUIRE_THROWS_WITH(SGD(make_params(1), 0.1, SGDOptions{0.9, 0, nan}),
                        "SGD: weight_decay must be finite and non-negative, got nan");
    REQUIRE_THROWS_WITH(SGD(make_params(1), 0.1, SGDOptions{0, 0, -1e-4}),
                        "SGD: weight_decay must be finite and non-negative, got -0.0001");
}

namespace {

// Gradients for parameter 0 at every step, for parameter 1 only from step `from` on (steps count from 0).
void set_partial_grads(std::vector<Tensor>& params, int step, int from) {
    params[0].set_grad(add(mul(params[0].detach(), 0.5), test::randn64(params[0].shape(), 300 + step, false)));
    params[1].set_grad(step >= from ? add(mul(params[1].detach(), 0.5), test::randn64(params[1].shape(), 400 + step, false))
                                    : Tensor());
}

}  // namespace

TEST_CASE("Adam's per-parameter step counts survive state_dict: a parameter that missed steps continues exactly",
          "[nn][optim][checkpoint]") {
    for (bool decoupled : {false, true}) {
        for (bool via_file : {false, true}) {
            CAPTURE(decoupled, via_file);
            const AdamOptions options{0.9, 0.999, 1e-8, 0.01};
            // Parameter 1 has no gradient at steps 0 and 1; the state is saved after step 2 (counts 3 and 1).
            std::vector<Tensor> a = make_params(1);
            Adam opt_a(a, 0.1, options, decoupled);
            for (int step = 0; step < 3; ++step) {
                set_partial_grads(a, step, 2);
                opt_a.step();
            }
            OptimizerState state = opt_a.state_dict();
            REQUIRE(state.metadata.at("step") == "3");
            REQUIRE(state.metadata.at("step.0") == "3");
            REQUIRE(state.metadata.at("step.1") == "1");
            if (via_file) {
                const std::string path = test::temp_path("optim_partial.safetensors");
                save_safetensors(path, state.tensors, state.metadata);
                const SafetensorsFile file = load_safetensors(path);
                std::remove(path.c_str());
                state = {file.tensors, file.metadata};
            }
            std::vector<Tensor> b = make_params(50);
            {
                NoGradGuard no_grad;
                for (size_t i = 0; i < a.size(); ++i) copy_(b[i], a[i]);
            }
            Adam opt_b(b, 0.1, options, decoupled);
            opt_b.load_state_dict(state);
            REQUIRE(opt_b.steps() == 3);
            REQUIRE(opt_b.steps(0) == 3);
            REQUIRE(opt_b.steps(1) == 1);
            for (int step = 3; step < 6; ++step) {
                set_partial_grads(a, step, 2);
                set_partial_grads(b, step, 2);
                opt_a.step();
                opt_b.step();
            }
            for (size_t i = 0; i < a.size(); ++i) REQUIRE(same_bytes(a[i], b[i]));
        }
    }
}

TEST_CASE("Adam loads a state with the global step only: parameters with buffers get it, the others 0",
          "[nn][optim][checkpoint]") {
    // Parameter 1 never had a gradient in 3 steps, so an old state holds exp_avg.0 and exp_avg_sq.0 only.
    std::vector<Tensor> a = make_params(1);
    Adam opt_a(a, 0.1);
    for (int step = 0; step < 3; ++step) {
        set_partial_grads(a, step, 99);
        opt_a.step();
    }
    OptimizerState old = opt_a.state_dict();
    REQUIRE(old.tensors.size() == 2);
    old.metadata.erase("step.0");
    old.metadata.erase("step.1");

    std::vector<Tensor> b = make_params(50);
    {
        NoGradGuard no_grad;
        for (size_t i = 0; i < a.size(); ++i) copy_(b[i], a[i]);
    }
    Adam opt_b(b, 0.2);
    opt_b.load_state_dict(old);
    REQUIRE(opt_b.steps() == 3);
    REQUIRE(opt_b.steps(0) == 3);
    REQUIRE(opt_b.steps(1) == 0);
    // It continues as the original does, parameter 1 starting its count when its gradient appears.
    for (int step = 3; step < 6; ++step) {
        set_partial_grads(a, step, 4);
        set_partial_grads(b, step, 4);
        opt_a.step();
        opt_b.step();
    }
    REQUIRE(opt_b.steps(1) == 2);
    for (size_t i = 0; i < a.size(); ++i) REQUIRE(same_bytes(a[i], b[i]));
    const OptimizerState resaved = opt_b.state_dict();  // written back with per-parameter counts
    REQUIRE(resaved.metadata.at("step.0") == "6");
    REQUIRE(resaved.metadata.at("step.1") == "2");

    // An old state whose step is 0 but which holds buffers is refused.
    OptimizerState zero = old;
    zero.metadata["step"] = "0";
    Adam opt_c(make_params(1), 0.1);
    REQUIRE_THROWS_WITH(opt_c.load_state_dict(zero), "adam load_state_dict: exp_avg.0 is present but step is 0");
}

TEST_CASE("load_state_dict refuses per-parameter step counts that do not fit the step or the buffers",
          "[nn][optim][checkpoint]") {
    std::vector<Tensor> p = make_params(1);
    Adam source(p, 0.01);
    for (int step = 0; step < 3; ++step) {
        set_partial_grads(p, step, 1);
        source.step();
    }
    const OptimizerState good = source.state_dict();  // step 3, step.0 3, step.1 2
    std::vector<Tensor> q = make_params(1);
    Adam target(q, 0.02);
    auto refused = [&](const OptimizerState& s, const std::string& message) {
        REQUIRE_THROWS_WITH(target.load_state_dict(s), message);
        REQUIRE(target.lr() == 0.02);
        REQUIRE(target.steps() == 0);
        REQUIRE(target.steps(0) == 0);
        REQUIRE(target.state_dict().tensors.empty());
    };
    OptimizerState s = good;
    s.metadata["step.1"] = "4";
    refused(s, "adam load_state_dict: step.1 is 4, more than step 3 (a parameter cannot have been updated more often "
               "than the optimizer stepped)");
    s = good;
    s.metadata["step.0"] = "-1";
    refused(s, "adam load_state_dict: step.0 must be non-negative, got -1");
    s = good;
    s.metadata["step.0"] = "x";
    refused(s, "adam load_state_dict: 'step.0' is 'x', not an integer");
    s = good;
    s.metadata.erase("step.1");
    refused(s, "adam load_state_dict: no 'step.1' entry");
    s = good;
    s.metadata["step.1"] = "0";
    refused(s, "adam load_state_dict: step.1 is 0 but exp_avg.1 is present");
    s = good;
    s.tensors.erase(std::remove_if(s.tensors.begin(), s.tensors.end(),
                                   [](const auto& t) { return t.first.back() == '0'; }),
                    s.tensors.end());
    refused(s, "adam load_state_dict: step.0 is 3 but exp_avg.0 is missing");
    s = good;
    s.metadata["step.2"] = "1";
    refused(s, "adam load_state_dict: unexpected metadata entry 'step.2'");
    target.load_state_dict(good);
    REQUIRE(target.steps(1) == 2);
}
