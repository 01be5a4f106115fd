#include "ops/loss.h"

#include <cmath>

#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace latte {

// A composite: autodiff differentiates it through sub, mul and mean.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
    check_same_kind("mse_loss", input, target);
    check_floating("mse_loss", input);
    LATTE_CHECK(input.shape() == target.shape(), "mse_loss: input ", shape_str(input.shape()), " and target ",
                shape_str(target.shape()), " differ in shape");
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
