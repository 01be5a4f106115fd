// where(cond, a, b): a where cond is nonzero, else b, like torch.where. cond is a 0/1 (any
// nonzero counts as true) float tensor of a's dtype or an int64 tensor; the three broadcast like
// NumPy. Exact with inf and NaN in the branch not taken (a select kernel, never a*c + b*(1-c)).
#pragma once
#include "../core/tensor.h"

namespace latte {

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

}  // namespace latte
