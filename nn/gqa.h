// Grouped-query cross-attention as the spec's MyGQA (Part 7): K/V have G heads and query head
// h uses K/V head h mod G (NOT the h // (H/G) grouping of other libraries). K and V are
// broadcast over the H/G query groups, never copied.
// Dims: B batch, L1/L2 lengths, D1/D2 widths, H heads, G kv heads, D_qk/D_v head dims.
// Parameters: W_Q (H*D_qk, D1), W_K (G*D_qk, D2), W_V (G*D_v, D2), W_O (D1, H*D_v), no bias.
#pragma once
#include "attention.h"
#include "linear.h"

namespace latte::nn {

class GroupedQueryAttention : public Attention {
public:
    GroupedQueryAttention(int64_t d1, int64_t d2, int64_t d_qk, int64_t d_v, int64_t heads, int64_t kv_heads,
                          Generator& gen, DType dtype = DType::Float32, RoPE rope = {});

    Tensor forward(const Tensor& x, const Tensor& y, bool causal = false) const override;
    int64_t kv_cache_per_position() const override { return kv_heads_ * (d_qk_ + d_v_); }
    int64_t input_width() const override { return d1_; }
    int64_t context_width() const override { return d2_; }
    std::map<std::string, std::string> config() const override;

    std::shared_ptr<Linear> W_Q, W_K, W_V, W_O;
    int64_t heads() const { return heads_; }
    int64_t kv_heads() const { return kv_heads_; }
    int64_t d_qk() const { return d_qk_; }
    int64_t d_v() const { return d_v_; }
    const RoPE& rope() const { return rope_; }

private:
    RoPE rope_;
    int64_t d1_, d2_, d_qk_, d_v_, heads_, kv_heads_;
};

}  // namespace latte::nn
