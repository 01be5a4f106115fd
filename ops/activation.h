// Activations and other pointwise ops of a decoder language model, like their torch
// counterparts. Each is one kernel forward (a UnaryOp of backends/common/pointwise.h, shared by the
// CPU and CUDA) and one kernel plus a mul backward.
#pragma once
#include "../core/tensor.h"

namespace latte {

Tensor sigmoid(const Tensor& x);  // 1 / (1 + exp(-x))
Tensor silu(const Tensor& x);     // x * sigmoid(x) (SwiGLU's gate)
// silu(gate) * up for gate and up of one shape: SwiGLU's pointwise part. One kernel pass forward
// and one backward where the backend has it (the CPU: the same values as silu then mul, without
// the intermediate tensors); elsewhere silu then mul.
Tensor swiglu(const Tensor& gate, const Tensor& up);
// gelu(x) = x * Phi(x) with the exact erf; approximate_tanh: torch's approximate="tanh",
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Tensor gelu(const Tensor& x, bool approximate_tanh = false);
Tensor abs(const Tensor& x);  // gradient sign(x): 0 at 0, as torch
// min(max(x, lo), hi), lo <= hi; gradient 1 for lo <= x <= hi (the bounds included, as torch), else 0.
Tensor clamp(const Tensor& x, double lo, double hi);

}  // namespace latte
