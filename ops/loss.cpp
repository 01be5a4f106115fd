#include "ops/loss.h"

#include <cmath>

#include "core/factory.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/movement.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace latte {

namespace {

// Mean or sum of squared differences in one pass forward and one backward on a backend that has
// the kernels (the CPU), as torch's mse_loss: dinput = 2 g (input - target) / N (N = 1 for a
// sum), dtarget = -dinput. Composed from sub, mul and a reduction, it took six passes over the
// output of a training step. It saves input and target themselves (not their difference), so an
// in-place write to either before backward makes backward fail, as in PyTorch.
Tensor fused_mse(const Tensor& input, const Tensor& target, bool mean) {
    Backend& backend = backend_for(input.device());
    const Tensor in = contiguous(input.detach()), tg = contiguous(target.detach());
    const int64_t n = in.numel();
    const double total = backend.squared_error_sum(in.view().data, tg.view().data, in.dtype(), n);
    Tensor out = full({}, mean ? total / static_cast<double>(n) : total, in.options());
    if (needs_graph({input, target})) {
        record(
            out, "mse_loss", {input, target},
            [in, tg, n, mean](const Tensor& g, const std::vector<bool>& needs) -> std::vector<Tensor> {
                const double scale = 2.0 * g.item() / (mean ? static_cast<double>(n) : 1.0);
                Tensor d = Tensor::empty(in.shape(), in.options());
                backend_for(in.device())
                    .squared_error_grad(d.view().data, in.view().data, tg.view().data, scale, in.dtype(), n);
                return {d, needs[1] ? neg(d) : Tensor()};
            },
            {in, tg});
    }
    return out;
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
    check_same_kind("mse_loss", input, target);
    check_floating("mse_loss", input);
    LATTE_CHECK(input.shape() == target.shape(), "mse_loss: input ", shape_str(input.shape()), " and target ",
                shape_str(target.shape()), " differ in shape");
    if (reduction != Reduction::None && input.numel() > 0 && backend_for(input.device()).has_fused_mse())
        return fused_mse(input, target, reduction == Reduction::Mean);
    // Composed: autodiff differentiates it through sub, mul and the reduction.
    Tensor diff = sub(input, target);
    Tensor sq = mul(diff, diff);
    switch (reduction) {
        case Reduction::Mean: return mean(sq);
        case Reduction::Sum: return sum(sq);
        case Reduction::None: return sq;
    }
    return sq;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
    check_defined(actual, "relative_error", "actual");
    check_defined(expected, "relative_error", "expected");
    LATTE_CHECK(actual.shape() == expected.shape(), "relative_error: actual ", shape_str(actual.shape()),
                " and expected ", shape_str(expected.shape()), " differ in shape");
    const std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff += (a[i] - e[i]) * (a[i] - e[i]);
        norm += e[i] * e[i];
    }
    if (diff == 0) return 0;  // equal tensors, zeros included (0/0 would be NaN)
    return std::sqrt(diff) / std::sqrt(norm);
}

}  // namespace latte
