// Softmax and log-softmax over one dim: numerically stable, with a fused backward kernel.
#pragma once
#include "../core/tensor.h"

namespace latte {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace latte
