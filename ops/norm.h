// RMSNorm and LayerNorm over the last dim, like torch.nn.functional.rms_norm / layer_norm with
// normalized_shape = (D,): fused forward and backward kernels (Backend::norm_fwd / norm_bwd).
#pragma once
#include "../core/tensor.h"

namespace latte {

// x (..., D); weight (D) or undefined (then 1).
// y = x / sqrt(mean(x^2) + eps) * weight
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);
// weight and bias (D) or undefined (then 1 and 0); the variance is biased (divides by D), as torch.
// y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

}  // namespace latte
