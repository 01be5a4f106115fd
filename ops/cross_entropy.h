// cross_entropy: fused log-softmax + negative log-likelihood over the last (class) dim, like
// torch.nn.functional.cross_entropy with class-index targets.
#pragma once
#include <cstdint>

#include "../core/tensor.h"
#include "loss.h"

namespace latte {

// logits (..., C) floating (e.g. (N, C) or (B, L, V)), targets int64 of shape (...) on the same
// device. Rows whose target is ignore_index contribute 0 loss and 0 gradient; Mean divides by the
// number of other rows (NaN when every row is ignored, as torch), Sum adds, None returns (...).
// A target outside [0, C) other than ignore_index is a latte::Error naming it and its index.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean);

}  // namespace latte
