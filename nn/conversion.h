// GQA <-> MLA: the spec's Parts 6, 9, 10 and 11 as functions.
//
// GQA as MHA: query head h uses K/V head h mod G, so the MHA-form key matrix is H/G copies of
// W_K (G*d, D) stacked along axis 0 (Part 6); its rank is W_K's rank, at most G*d. An SVD
// then factors it as W_UK W_DKV with rank G*d (Parts 9, 10).
//
// An MLA module has ONE W_DKV shared by keys and values, so the latent must span the row
// spaces of W_K and W_V together: the SVD is of [W_K; W_V] (2*G*d, D), and r = 2*G*d (capped at
// D). r = G*d per matrix (Part 9) is enough only when W_K and W_V share a row space, e.g.
// W_V = A W_K; `rank_needed` reports what a given module actually needs.
#pragma once
#include <memory>

#include "decoder_lm.h"
#include "gqa.h"
#include "mla.h"

namespace latte::nn {

struct LatentFactors {
    Tensor W_DKV;     // (r, D)
    Tensor W_UM;      // (D, r)
    double mse = 0;   // mean((tiled - W_UM W_DKV)^2)
};

// Part 10: W_M_GQA (r, D) with r | D; tiles D/r copies along axis 0 and factors the (D, D)
// result by SVD: W_UM = U[:, :r], W_DKV = diag(S[:r]) Vh[:r, :].
LatentFactors gqa_to_mla(const Tensor& W_M_GQA);

// The MLA module whose outputs (and input gradients) equal `gqa`'s on every input. Needs
// D_1 = D_2 = H*D_qk and D_qk = D_v. rank 0 picks min(2*G*d, D), which is always exact; a
// smaller rank keeps the top singular directions of [W_K; W_V] (exact iff rank >= rank_needed).
// The factorisation runs on the CPU in float64; the result has gqa's dtype and device.
std::shared_ptr<MultiHeadLatentAttention> to_mla(const GroupedQueryAttention& gqa, int64_t rank = 0);

// A whole language model: a RoPE-free GQA DecoderLM (config rope = false) -> the DecoderLM with
// attention mla whose logits equal `lm`'s on every input. Each layer's attention goes through
// to_mla(gqa, rank) above (rank 0: min(2*G*d, D), exact); every other parameter (embedding,
// norms, MLPs, head) is copied. Throws for any other attention kind, and for a GQA with RoPE:
// rope(W_K x) depends on the key's position, so no position-free latent W_DKV x can rebuild it.
std::shared_ptr<DecoderLM> to_mla(const DecoderLM& lm, int64_t rank = 0);

// Partial RoPE (as MHA2MLA, Ji et al. 2025) for a GQA DecoderLM with RoPE on q and k and G = 1
// (MLA + RoPE shares one rotary key among all heads, as the single K head of G = 1 is):
//   - Which dims keep RoPE, the rule: MHA2MLA's "high frequency" one. The rope_dim/2 fastest-
//     turning pairs (i < rope_dim/2, angle position * base^(-2i/d)) keep their rotation. Those
//     rows of W_K become W_KR; those rows of each head of W_Q become W_QR.
//   - Every other pair becomes position-free: its rows of W_Q stay in W_Q (the kept rows zeroed),
//     and [W_K without the kept rows; W_V] is factored by a truncated SVD to `rank` (0: min(2d, D)).
//   - The rotary part is exact: the result's rope_base is base^(rope_dim/d), so its pair i turns at
//     base^(-2i/d) as before, in the model's pairing. Scores keep 1/sqrt(d) (W_Q and W_QR scaled
//     by sqrt((d + rope_dim)/d)).
//   - The rest differs from the source by the rotation those pairs lose, so the result needs
//     fine-tuning. It is exact where no rotation is lost: rope_dim = d (at full rank), or angles
//     that are 0.
// The result is an mla_rope DecoderLM without the latent norm; every other parameter is copied.
// rope_dim: even, 2..d. The factorisation runs on the CPU in float64.
std::shared_ptr<DecoderLM> to_mla_rope(const DecoderLM& lm, int64_t rank, int64_t rope_dim);

// The numerical rank of [W_K; W_V]: the smallest exact rank for to_mla.
int64_t rank_needed(const GroupedQueryAttention& gqa);

// Part 11: W (H*d, D), an MHA-form key or value matrix, is GQA with G K/V heads iff its H/G
// blocks of G*d rows are equal (up to rtol of its largest entry).
bool is_gqa_representable(const Tensor& W, int64_t heads, int64_t kv_heads, double rtol = 1e-10);
// Both W_UK W_DKV and W_UV W_DKV of an MLA module are.
bool is_gqa_representable(const MultiHeadLatentAttention& mla, int64_t kv_heads, double rtol = 1e-10);

// An MLA with a latent norm or query compression (LatentOptions) is never representable, and to_gqa
// throws for it, saying why: no GQA equals it.
// The way back, for an MLA that is_gqa_representable with G = kv_heads: the GQA whose W_K and W_V
// are the first G*d rows of W_UK W_DKV and W_UV W_DKV. Throws when the MLA is not representable.
std::shared_ptr<GroupedQueryAttention> to_gqa(const MultiHeadLatentAttention& mla, int64_t kv_heads,
                                              double rtol = 1e-10);

}  // namespace latte::nn
