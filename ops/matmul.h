// Matrix product with torch.matmul's rules: 1-D operands are promoted (and the added dim
// removed), N-D operands are stacks of matrices whose batch dims broadcast.
#pragma once
#include "../core/tensor.h"

namespace latte {

Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace latte
