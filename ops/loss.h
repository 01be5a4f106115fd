// Losses.
#pragma once
#include "core/tensor.h"

namespace latte {

enum class Reduction { Mean, Sum, None };

// Mean squared error, like torch.nn.functional.mse_loss; shapes must match exactly.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace latte
