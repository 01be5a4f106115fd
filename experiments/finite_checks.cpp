#include "experiments/finite_checks.h"

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

void check_finite_loss(double loss, int64_t step, double lr, const std::string& after) {
    if (!std::isfinite(loss)) diverged("the loss is " + std::to_string(loss), step, lr, after);
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

}  // namespace latte::experiments
