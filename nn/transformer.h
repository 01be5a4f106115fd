// A pre-norm residual transformer block (GPT-2 / Llama layout) with causal self-attention:
//   x = x + attn(norm1(x), norm1(x), causal);  x = x + mlp(norm2(x))
// with any attention module of nn/attention.h (its widths must both be D) and a SwiGLU MLP.
// Parameters: norm1.*, attn.*, norm2.*, mlp.*.
#pragma once
#include <memory>

#include "attention.h"
#include "mlp.h"
#include "norm.h"

namespace latte::nn {

class TransformerBlock : public Module {
public:
    TransformerBlock(int64_t dim, std::shared_ptr<Attention> attention, int64_t mlp_hidden, Generator& gen,
                     NormType norm = NormType::RMS, DType dtype = DType::Float32);

    Tensor forward(const Tensor& x) const;  // (B, L, D) -> (B, L, D)
    Tensor operator()(const Tensor& x) const { return forward(x); }

    std::shared_ptr<Norm> norm1;
    std::shared_ptr<Attention> attn;
    std::shared_ptr<Norm> norm2;
    std::shared_ptr<MLP> mlp;
};

}  // namespace latte::nn
