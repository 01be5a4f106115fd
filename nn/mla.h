// Multi-head latent attention (the spec's MLA, before Part 9): keys and values come from one
// shared latent c = W_DKV y of rank r, computed once: K = W_UK c, V = W_UV c.
// Dims: B batch, L1/L2 lengths, D width (D = H*d), H heads, d head dim, r latent rank.
// Parameters: W_Q (H*d, D), W_DKV (r, D), W_UK (H*d, r), W_UV (H*d, r), W_O (D, H*d), no bias.
#pragma once
#include "attention.h"
#include "linear.h"

namespace latte::nn {

class MultiHeadLatentAttention : public Attention {
public:
    MultiHeadLatentAttention(int64_t width, int64_t heads, int64_t head_dim, int64_t rank, Generator& gen,
                             DType dtype = DType::Float32);

    Tensor forward(const Tensor& x, const Tensor& y, bool causal = false) const override;
    // The same outputs by the absorbed path (Parts 12-13): all heads attend c = W_DKV y
    // directly, with W_UK folded into the queries and W_UV into W_O. Differentiable.
    Tensor forward_absorbed(const Tensor& x, const Tensor& y, bool causal = false) const;
    int64_t kv_cache_per_position() const override { return rank_; }
    int64_t input_width() const override { return width_; }
    int64_t context_width() const override { return width_; }
    std::map<std::string, std::string> config() const override;

    std::shared_ptr<Linear> W_Q, W_DKV, W_UK, W_UV, W_O;
    int64_t heads() const { return heads_; }
    int64_t head_dim() const { return head_dim_; }
    int64_t rank() const { return rank_; }

private:
    int64_t width_, heads_, head_dim_, rank_;
};

}  // namespace latte::nn
