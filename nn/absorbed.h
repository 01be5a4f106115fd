// The absorbed (reduced) form of MLA, the spec's Parts 12 and 13: W_UK is folded into the
// queries and W_UV into the output projection, so every head attends the SAME latent
// c = W_DKV y (r numbers per position) instead of per-head keys and values.
// Dims: B batch, L1/L2 lengths, D width, H heads, d head dim, r latent rank.
#pragma once
#include "mla.h"

namespace latte::nn {

struct ReducedMatrices {
    Tensor W_K_hat;  // (r, D)   = W_DKV
    Tensor W_V_hat;  // (r, D)   = W_DKV
    Tensor W_Q_hat;  // (H*r, D) head h: sqrt(r/d) W_UK_h^T W_Q_h
    Tensor W_O_hat;  // (D, H*r) head h: W_O_h W_UV_h
};

// Part 13's reduced_matrices from weights stored (out, in) as in PyTorch: W_DKV (r, D),
// W_UK (H*d, r), W_UV (H*dv, r), W_Q (H*d, D), W_O (D, H*dv). Batched matmuls over the H
// heads, no loop, so it is differentiable in every input.
ReducedMatrices reduced_matrices(const Tensor& W_DKV, const Tensor& W_UK, const Tensor& W_UV, const Tensor& W_Q,
                                 const Tensor& W_O, int64_t heads);

// How the reduced queries and outputs are computed; the attention over the shared latent is the
// same in both, and so are the results up to rounding.
//   Precomputed: the spec's W_Q_hat (H*r, D) and W_O_hat (D, H*r), one product each (with
//                q_rank, W_Q_hat is (H*r, q_rank) and reads c_Q).
//   Factored:    q_hat_h = sqrt(r/d) W_UK_h^T (W_Q_h x) and W_O_h (W_UV_h o_h), per-head products
//                batched over h: H*d*(D + r) multiply-adds per token instead of H*r*D, which is
//                fewer when r > d (e.g. 3x fewer for D=1024, H=16, d=64, r=256).
//   Auto:        Factored when r > d, else Precomputed.
enum class AbsorbedForm { Auto, Precomputed, Factored };

// The weights a precomputed product was made from, as they were then: each one's storage and
// its count of in-place writes. Once one has changed (an optimizer step, nn::load, set_weight,
// Module::to), the product is stale, and mixing it with the live weights would give wrong
// outputs: check_unchanged refuses that, naming the weight.
class WeightSnapshot {
public:
    WeightSnapshot() = default;
    explicit WeightSnapshot(const std::vector<std::pair<std::string, Tensor>>& weights);
    void check_unchanged(const std::string& who) const;

private:
    struct Stamp {
        std::string name;
        Tensor weight;  // shares the parameter's TensorImpl, so it sees set_data
        std::shared_ptr<Storage> storage;
        uint64_t version;
    };
    std::vector<Stamp> stamps_;
};

// The inference form of one MLA module, which must outlive it (it reads the module's latent
// norms and weights). Its matrices are computed from the module's weights when it is built (recorded for autodiff when grad mode is on), so rebuild it after a weight
// update: the precomputed form refuses to run once a weight it used has changed.
class AbsorbedLatentAttention {
public:
    explicit AbsorbedLatentAttention(const MultiHeadLatentAttention& mla, AbsorbedForm form = AbsorbedForm::Auto);

    // Equals mla.forward(x, y, causal) up to rounding: x (B, L1, D), y (B, L2, D) -> (B, L1, D).
    Tensor forward(const Tensor& x, const Tensor& y, bool causal = false) const;
    // c = W_DKV y (B, L2, r), RMS-normalised when the module has kv_norm: the only thing a decoder
    // caches per position. With q_rank, queries go through the module's W_DQ and q_norm first.
    Tensor latent(const Tensor& y) const;
    // Outputs for queries x (B, L1, D) over latents c (B, L2, r), scale 1/sqrt(r).
    Tensor attend(const Tensor& x, const Tensor& c, bool causal = false) const;

    // W_K_hat = W_V_hat = W_DKV always; W_Q_hat and W_O_hat only in the precomputed form
    // (undefined when factored()).
    const ReducedMatrices& matrices() const { return m_; }
    bool factored() const { return factored_; }
    int64_t heads() const { return heads_; }
    int64_t rank() const { return rank_; }
    int64_t width() const { return width_; }

private:
    Tensor queries(const Tensor& x) const;  // (B, L1, D) -> (B, L1, H*r)
    Tensor output(const Tensor& o) const;   // (B, L1, H*r) -> (B, L1, D)

    const MultiHeadLatentAttention* mla_;  // for its latent norms; it must outlive this
    ReducedMatrices m_;
    Tensor W_Q_, W_UK_, W_UV_, W_O_;  // the module's weights, for the factored form
    WeightSnapshot snapshot_;          // what the precomputed form was built from
    int64_t heads_, head_dim_, rank_, width_;
    bool factored_;
};

}  // namespace latte::nn
