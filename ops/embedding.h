// embedding(weight, ids): rows of a (V, D) table picked by int64 ids, like
// torch.nn.functional.embedding. Backward scatter-adds into (V, D); repeated ids accumulate.
#pragma once
#include "../core/tensor.h"

namespace latte {

// weight (V, D) floating, ids int64 of any shape (...) on weight's device -> (..., D).
// Ids outside [0, V) are a latte::Error naming the first bad id and its index (checked on the host).
Tensor embedding(const Tensor& weight, const Tensor& ids);

}  // namespace latte
