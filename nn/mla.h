// Multi-head latent attention (the spec's MLA, before Part 9): keys and values come from one
// shared latent c = W_DKV y of rank r, computed once: K = W_UK c, V = W_UV c.
// Dims: B batch, L1/L2 lengths, D width (D = H*d), H heads, d head dim, r latent rank.
// Parameters: W_Q (H*d, D), W_DKV (r, D), W_UK (H*d, r), W_UV (H*d, r), W_O (D, H*d), no bias.
//
// LatentOptions adds what DeepSeek-V2 (section 2.1 and its reference model) has beyond the spec:
//   kv_norm: c = RMSNorm(W_DKV y) (parameter kv_norm.weight (r)): the latent is normalised before
//            W_UK and W_UV read it, and a decoder caches the normalised latent.
//   q_rank:  queries from a compressed, normalised latent c_Q = RMSNorm(W_DQ x) of rank q_rank
//            (parameters W_DQ (q_rank, D), q_norm.weight (q_rank)); W_Q (and MLA + RoPE's W_QR) then
//            read c_Q: W_Q is (H*d, q_rank), DeepSeek's W_UQ.
// Both leave the absorbed path exact: the norms act on c and c_Q, and W_UK, W_UV stay linear maps of
// c. The defaults (both off) are the spec's MLA. The norm is nonlinear, so a GQA converts exactly
// only to the norm-free MLA (nn/conversion.h).
#pragma once
#include "attention.h"
#include "linear.h"
#include "norm.h"

namespace latte::nn {

// The norms are RMSNorm with eps 1e-6, as DeepSeek-V2's.
struct LatentOptions {
    bool kv_norm = false;
    int64_t q_rank = 0;  // 0: queries straight from x
};

// The options as config() entries ("kv_norm", "q_rank"; written only when set, so a config
// without them is the plain MLA) and back; read_latent_options throws naming `who`.
void write_latent_options(std::map<std::string, std::string>& config, const LatentOptions& options);
LatentOptions read_latent_options(const std::map<std::string, std::string>& config, const std::string& who);

// The parts LatentOptions adds to an MLA module, and the inputs they give W_Q and W_UK/W_UV.
class LatentNorms {
public:
    LatentNorms() = default;
    // Builds W_DQ, q_norm and kv_norm as the options ask (checked, naming `who`).
    LatentNorms(const char* who, int64_t width, int64_t rank, const LatentOptions& options, Generator& gen,
                DType dtype);
    // Those built, by parameter prefix ("W_DQ", "q_norm", "kv_norm"), for the owner to register.
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> modules() const;
    // x (B, L, D) -> what W_Q reads: x, or c_Q = RMSNorm(W_DQ x) (B, L, q_rank).
    Tensor query_input(const Tensor& x) const;
    // W_DKV y (B, L, r) -> the latent: itself, or RMSNorm of it.
    Tensor latent(const Tensor& projected) const;
    const LatentOptions& options() const { return options_; }

    std::shared_ptr<Linear> W_DQ;          // null unless q_rank > 0
    std::shared_ptr<RMSNorm> q_norm, kv_norm;  // null unless used

private:
    LatentOptions options_;
};

class MultiHeadLatentAttention : public Attention {
public:
    MultiHeadLatentAttention(int64_t width, int64_t heads, int64_t head_dim, int64_t rank, Generator& gen,
                             DType dtype = DType::Float32, LatentOptions options = {});

    Tensor forward(const Tensor& x, const Tensor& y, bool causal = false) const override;
    // The same outputs by the absorbed path (Parts 12-13): all heads attend c = W_DKV y
    // directly, with W_UK folded into the queries and W_UV into W_O. Differentiable.
    Tensor forward_absorbed(const Tensor& x, const Tensor& y, bool causal = false) const;
    int64_t kv_cache_per_position() const override { return rank_; }
    int64_t input_width() const override { return width_; }
    int64_t context_width() const override { return width_; }
    std::map<std::string, std::string> config() const override;

    // What W_Q reads (x, or c_Q with q_rank) and the latent c for y (normalised with kv_norm).
    Tensor query_input(const Tensor& x) const { return norms_.query_input(x); }
    Tensor latent(const Tensor& y) const { return norms_.latent(W_DKV->forward(y)); }

    std::shared_ptr<Linear> W_Q, W_DKV, W_UK, W_UV, W_O;
    int64_t heads() const { return heads_; }
    int64_t head_dim() const { return head_dim_; }
    int64_t rank() const { return rank_; }
    const LatentOptions& options() const { return norms_.options(); }
    const LatentNorms& norms() const { return norms_; }
    // Neither option is on: the spec's MLA, which converts to and from GQA exactly.
    bool is_plain() const { return !options().kv_norm && options().q_rank == 0; }

private:
    int64_t width_, heads_, head_dim_, rank_;
    LatentNorms norms_;
};

}  // namespace latte::nn
