// Losses.
#pragma once
#include "../core/tensor.h"

namespace latte {

enum class Reduction { Mean, Sum, None };

// Mean squared error, like torch.nn.functional.mse_loss; shapes must match exactly.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// sqrt(mean((actual - expected)^2)) / sqrt(mean(expected^2)), the spec's Part 13 relative
// error, accumulated in double on the host; shapes must match.
double relative_error(const Tensor& actual, const Tensor& expected);

}  // namespace latte
