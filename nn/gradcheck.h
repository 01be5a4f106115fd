// gradcheck for modules: central differences against reverse mode for every parameter that
// requires grad, reported by parameter name and index, e.g.
//   "gradcheck: W_Q.weight[3,1]: analytic 0.52 vs numeric 0.61 (diff 0.09)"
// instead of an input number and flat element. Parameters' values and .grad are left exactly
// as they were, so it can run in the middle of training. The module must be float64
// (module.to(DType::Float64)); the loss is projected on a fixed random R as in ops/gradcheck.h.
#pragma once
#include <concepts>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../ops/gradcheck.h"
#include "module.h"

namespace latte::nn {

// Checks `loss()` against the named tensors (float64 leaves).
GradcheckResult gradcheck_parameters(const std::vector<std::pair<std::string, Tensor>>& parameters,
                                     const std::function<Tensor()>& loss, const GradcheckOptions& options = {});

// gradcheck_module(mha, [&](nn::MultiHeadAttention& m) { return m(x, y); }): loss_fn runs the
// module on fixed inputs; it is called about twice per parameter element, so keep sizes small.
template <class M, class F>
    requires std::derived_from<M, Module> && std::invocable<F&, M&>
GradcheckResult gradcheck_module(M& module, F loss_fn, const GradcheckOptions& options = {}) {
    return gradcheck_parameters(module.named_parameters(), [&] { return loss_fn(module); }, options);
}

}  // namespace latte::nn
