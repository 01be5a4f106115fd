// An independent float64 reference for attention: the per-head loop form of the spec's Parts
// 3-4, written with plain loops over std::vector (no latte ops), for any H and G (h uses g = h mod G).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace latte::test {

struct AttentionWeights {
    Tensor W_Q, W_K, W_V, W_O;  // (H*dqk, D1), (G*dqk, D2), (G*dv, D2), (D1, H*dv)
};

// x (B, L1, D1), y (B, L2, D2) -> (B, L1, D1) as a float64 tensor.
Tensor reference_attention(const Tensor& x, const Tensor& y, const AttentionWeights& w, int64_t heads,
                           int64_t kv_heads, bool causal);

}  // namespace latte::test
