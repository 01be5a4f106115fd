// gradcheck: compares reverse-mode gradients with central finite differences, like
// torch.autograd.gradcheck. Reusable by users for their own ops and modules.
//
// The loss is sum(f(inputs) * R) with a fixed random R, never sum(f(inputs)): the sum of a
// softmax is constant, so a broken softmax backward would pass a plain sum.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace latte {

struct GradcheckOptions {
    double eps = 1e-6;   // finite-difference step
    double atol = 1e-7;  // |analytic - numeric| <= atol + rtol * |numeric|
    double rtol = 1e-5;
    uint64_t seed = 1234;  // for R
};

struct GradcheckResult {
    bool ok = false;
    std::string message;  // which input, which element, analytic vs numeric
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// `inputs` are float64 CPU leaves; those with requires_grad are checked element by element.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace latte
