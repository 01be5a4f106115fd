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

[[noreturn]] void diverged(const std::string& who, const std::string& what, int64_t step, double lr,
                           const std::string& after) {
    LATTE_FAIL(who, ": ", what, " at step ", step, " (lr ", lr,
               "): training diverged and stopped; nothing was saved from the diverged state. ", after);
}

}  // namespace

std::string nonfinite_text(double value) {
    return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
}

void check_finite_loss(const std::string& who, double loss, int64_t step, double lr, const std::string& after) {
    if (!std::isfinite(loss)) diverged(who, "the loss is " + nonfinite_text(loss), step, lr, after);
}

void check_finite_gradients(const std::string& who, const nn::Module& module, int64_t step, double lr,
                            const std::string& after) {
    for (const auto& [name, p] : module.named_parameters()) {
        const Tensor g = p.grad();
        if (g.defined() && !std::isfinite(sum64(g))) diverged(who, "the gradient of " + name + " is not finite", step, lr, after);
    }
}

void check_finite_parameters(const std::string& who, const nn::Module& module, int64_t step, double lr,
                             const std::string& after) {
    for (const auto& [name, p] : module.named_parameters())
        if (!std::isfinite(sum64(p))) diverged(who, "parameter " + name + " became non-finite", step, lr, after);
}

void check_optimizer_state(const std::string& who, const nn::OptimizerState& state, int64_t step, double lr,
                           const std::string& after) {
    for (const auto& [name, t] : state.tensors) {
        if (!std::isfinite(sum64(t))) diverged(who, "optimizer state " + name + " became non-finite", step, lr, after);
        // Adam's second moment is a running mean of squares: negative only if something wrote over it.
        if (name.rfind("exp_avg_sq.", 0) == 0) {
            NoGradGuard no_grad;
            const std::vector<double> v = to(t, Device::cpu()).to_vector();
            if (std::any_of(v.begin(), v.end(), [](double x) { return x < 0; }))
                diverged(who, "optimizer state " + name + " became negative", step, lr, after);
        }
    }
}

void check_finite_figure(const std::string& who, const std::string& what, double value, int64_t step, double lr,
                         const std::string& after) {
    if (!std::isfinite(value))
        LATTE_FAIL(who, ": ", what, " is ", nonfinite_text(value), " after step ", step, " (lr ", lr,
                   "): training diverged and stopped; nothing was saved from the diverged state. ", after);
}

}  // namespace latte::experiments
