// The SwiGLU feed-forward block of Llama-style decoders: down(silu(gate(x)) * up(x)), no bias.
// Parameters: W_gate (hidden, D), W_up (hidden, D), W_down (D, hidden).
#pragma once
#include "linear.h"

namespace latte::nn {

class MLP : public Module {
public:
    MLP(int64_t dim, int64_t hidden, Generator& gen, DType dtype = DType::Float32);

    Tensor forward(const Tensor& x) const;  // (..., D) -> (..., D)
    Tensor operator()(const Tensor& x) const { return forward(x); }

    std::shared_ptr<Linear> W_gate, W_up, W_down;
};

}  // namespace latte::nn
