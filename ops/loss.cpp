#include "ops/loss.h"

#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"

namespace latte {

// A composite: autodiff differentiates it through sub, mul and mean.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
    check_same_kind("mse_loss", input, target);
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

}  // namespace latte
