// Multi-head latent attention with decoupled RoPE (DeepSeek-V2). The content ("nope") part is the
// spec's MLA: keys and values come from one latent c = W_DKV y of rank r. RoPE cannot act on
// keys rebuilt from c without breaking the absorbed path, so position enters through a separate
// part: each query head gets d_R extra rotary dims (W_QR x), and ONE rotary key of d_R dims,
// shared by every head, is computed from the input (W_KR y). Per head h:
//   score = (q_h · k_h + rope(q_R,h) · rope(k_R)) / sqrt(d + d_R),  k_h = W_UK_h c,  v_h = W_UV_h c.
// Absorbed, W_UK folds into the queries and every head attends [c, rope(k_R)] (r + d_R numbers
// per position), which is all a decoder caches.
// Positions: keys 0 .. L2-1; queries are the last L1 of them (query_position_offset), or start
// at a given offset when decoding.
// Dims: B batch, L1/L2 lengths, D width (D = H*d), H heads, d head dim, r rank, d_R rope dim (even).
// Parameters: W_Q (H*d, D), W_QR (H*d_R, D), W_DKV (r, D), W_KR (d_R, D), W_UK (H*d, r),
// W_UV (H*d, r), W_O (D, H*d), no bias.
// LatentOptions (mla.h) as in DeepSeek-V2: kv_norm normalises c (the rotary key k_R = W_KR y is
// not normalised); with q_rank, W_Q and W_QR both read c_Q = RMSNorm(W_DQ x) (W_Q (H*d, q_rank),
// W_QR (H*d_R, q_rank)). The rotary dims pair rotate-half or interleaved (ops/rope.h).
#pragma once
#include "absorbed.h"
#include "attention.h"
#include "linear.h"

namespace latte::nn {

class MultiHeadLatentAttentionRoPE : public Attention {
public:
    MultiHeadLatentAttentionRoPE(int64_t width, int64_t heads, int64_t head_dim, int64_t rank, int64_t rope_dim,
                                 Generator& gen, DType dtype = DType::Float32, double rope_base = 10000.0,
                                 LatentOptions options = {}, RoPEPairing pairing = RoPEPairing::RotateHalf);

    Tensor forward(const Tensor& x, const Tensor& y, bool causal = false) const override;
    // The same outputs by the absorbed path (AbsorbedLatentAttentionRoPE). Differentiable.
    Tensor forward_absorbed(const Tensor& x, const Tensor& y, bool causal = false) const;
    // The latent c (r) plus the shared rotary key (d_R).
    int64_t kv_cache_per_position() const override { return rank_ + rope_dim_; }
    int64_t input_width() const override { return width_; }
    int64_t context_width() const override { return width_; }
    std::map<std::string, std::string> config() const override;

    // The rotary parts, rotated: queries -> (B, L1, H*d_R) from q_in = query_input(x) and the shared
    // key y (B, L2, D) -> (B, L2, d_R), the first row at position `position_offset`.
    Tensor rope_queries(const Tensor& q_in, int64_t position_offset) const;
    Tensor rope_key(const Tensor& y, int64_t position_offset) const;
    double scale() const;  // 1 / sqrt(d + d_R)

    // What W_Q and W_QR read (x, or c_Q with q_rank) and the latent c for y (normalised with kv_norm).
    Tensor query_input(const Tensor& x) const { return norms_.query_input(x); }
    Tensor latent(const Tensor& y) const { return norms_.latent(W_DKV->forward(y)); }

    std::shared_ptr<Linear> W_Q, W_QR, W_DKV, W_KR, W_UK, W_UV, W_O;
    int64_t heads() const { return heads_; }
    int64_t head_dim() const { return head_dim_; }
    int64_t rank() const { return rank_; }
    int64_t rope_dim() const { return rope_dim_; }
    double rope_base() const { return rope_base_; }
    RoPEPairing rope_pairing() const { return pairing_; }
    const LatentOptions& options() const { return norms_.options(); }
    const LatentNorms& norms() const { return norms_; }

private:
    int64_t width_, heads_, head_dim_, rank_, rope_dim_;
    double rope_base_;
    RoPEPairing pairing_;
    LatentNorms norms_;
};

// The absorbed form: queries [W_UK_h^T W_Q_h x, rope(W_QR_h x)] (r + d_R per head) attend the
// shared latents [c, rope(k_R)] (r + d_R per position), the values are c, and W_UV_h folds into
// the output: W_O_h W_UV_h. AbsorbedForm as in absorbed.h (Precomputed: W_Q_hat (H*r, D) and
// W_O_hat (D, H*r); Factored: per-head products). Built from the module's weights (recorded for
// autodiff when grad mode is on): rebuild it after a weight update (the precomputed form refuses
// to run once a weight it used has changed).
class AbsorbedLatentAttentionRoPE {
public:
    explicit AbsorbedLatentAttentionRoPE(const MultiHeadLatentAttentionRoPE& mla,
                                         AbsorbedForm form = AbsorbedForm::Auto);

    // Equals mla.forward(x, y, causal) up to rounding.
    Tensor forward(const Tensor& x, const Tensor& y, bool causal = false) const;
    // What a decoder caches for y (B, L2, D) at positions position_offset..: [c, rope(k_R)]
    // (B, L2, r + d_R).
    Tensor latent(const Tensor& y, int64_t position_offset = 0) const;
    // Outputs for queries x (B, L1, D) over cached latents (B, L2, r + d_R); the first query is at
    // position `position_offset` (< 0: query_position_offset(L1, L2), the last L1 positions).
    Tensor attend(const Tensor& x, const Tensor& latents, bool causal = false, int64_t position_offset = -1) const;

    bool factored() const { return factored_; }
    int64_t width() const { return mla_->input_width(); }
    int64_t cache_width() const { return mla_->rank() + mla_->rope_dim(); }

private:
    Tensor queries(const Tensor& x, int64_t position_offset) const;  // (B, L1, H*(r + d_R))
    Tensor output(const Tensor& o) const;                             // (B, L1, H*r) -> (B, L1, D)

    const MultiHeadLatentAttentionRoPE* mla_;
    Tensor W_Q_hat_, W_O_hat_;  // the precomputed form only
    WeightSnapshot snapshot_;   // what they were built from
    bool factored_;
};

}  // namespace latte::nn
