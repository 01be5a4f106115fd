#include "experiments/finite_checks.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

// Finite iff every element is: NaN and infinities carry into the sum, and float64 cannot
// overflow summing float32 values.
double sum64(const Tensor& t) {
    NoGradGuard no_grad;
    return sum(to(t, DType::Float64)).item();
}

[[noreturn]] void diverged(const std::string& what, int64_t step, double lr, const std::string& after) {
    LATTE_FAIL("latte train: ", what, " at step ", step, " (lr ", lr,
               "): training diverged and stopped; nothing was saved from the diverged state. ", after);
}

}  // namespace

std::string nonfinite_text(double value) {
    return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
}

void check_finite_loss(double loss, int64_t step, double lr, const std::string& after) {
    if (!std::isfinite(loss)) diverged("the loss is " + nonfinite_text(loss), step, lr, after);
}

void check_finite_gradients(const nn::Module& module, int64_t step, double lr, const std::string& after) {
    for (const auto& [name, p] : module.named_parameters()) {
        const Tensor g = p.grad();
        if (g.defined() && !std::isfinite(sum64(g))) diverged("the gradient of " + name + " is not finite", step, lr, after);
    }
}

void check_finite_parameters(const nn::Module& module, int64_t step, double lr, const std::string& after) {
    for (const auto& [name, p] : module.named_parameters())
        if (!std::isfinite(sum64(p))) diverged("parameter " + name + " became non-finite", step, lr, after);
}


void check_optimizer_state(const nn::OptimizerState& state, int64_t step, double lr, const std::string& after) {
    for (const auto& [name, t] : state.tensors) {
        if (!std::isfinite(sum64(t))) diverged("optimizer state " + name + " became non-finite", step, lr, after);
        // Adam's second moment is a running mean of squares: negative only if something wrote over it.
        if (name.rfind("exp_avg_sq.", 0) == 0) {
            NoGradGuard no_grad;
            const std::vector<double> v = to(t, Device::cpu()).to_vector();
            if (std::any_of(v.begin(), v.end(), [](double x) { return x < 0; }))
                diverged("optimizer state " + name + " became negative", step, lr, after);
        }
    }
}

}  // namespace latte::experiments
