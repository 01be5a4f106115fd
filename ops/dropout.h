// Dropout: zeroes each element with probability p, drawn from an explicit Generator, and scales
// the kept ones by 1 / (1 - p), like torch.nn.functional.dropout.
#pragma once
#include "../core/random.h"
#include "../core/tensor.h"

namespace latte {

// p in [0, 1). Returns x itself when !training or p == 0 (no draws). Otherwise draws
// u = rand(x.shape, gen) (x.numel() uniforms, on x's device, the same numbers on every device),
// keeps elements with u >= p, and the backward multiplies by the same scaled mask.
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

}  // namespace latte
