// The attention core shared by every module, and the interface the modules share.
// Dims: B batch, L1/L2 lengths (attending / attended), D1/D2 widths, H heads, G kv heads,
// d head dim (D_qk, D_v), r latent rank.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "../core/random.h"
#include "../ops/rope.h"
#include "module.h"

namespace latte::nn {

// Rows [first_row, first_row + rows) of the (L1, L2) additive causal mask: 0 where query i may
// see key j (j <= i + L2 - L1), -inf elsewhere. rows < 0: to the last row.
Tensor causal_mask(int64_t l1, int64_t l2, const TensorOptions& options, int64_t first_row = 0, int64_t rows = -1);

// Where the fused kernel is not used (a backend without it, or switched off): when the full score
// tensor (batch x L1 x L2) would take more than this many bytes,
// scaled_dot_product_attention and latent_attention switch to chunked_attention
// (nn/chunked_attention.h), whose memory is linear in L. Default 256 MiB; 0 always chunks, a
// negative value never does.
void set_attention_memory_limit(int64_t bytes);
int64_t attention_memory_limit();

// grouped_attention and latent_attention use the fused kernel (nn/flash_attention.h) on backends
// that have one; this switch turns it off, for comparisons and tests of the other forms.
void set_flash_attention_enabled(bool on);
bool flash_attention_enabled();

// softmax(q k^T * scale [+ causal mask]) v over the last two dims; batch dims broadcast.
// q (..., L1, d), k (..., L2, d), v (..., L2, dv) -> (..., L1, dv).
// The causal mask lets query i see keys j <= i + (L2 - L1): the queries are the last L1
// positions of the L2 keys, which is what decoding with a cache needs (it needs L1 <= L2).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal);

// Heads of projected sequences: q (B, L1, H*d), k (B, L2, G*d), v (B, L2, G*dv) -> (B, L1, H*dv).
// Query head h uses K/V head h mod G (the spec's rule), through a stride-0 broadcast over the
// H/G query groups: K and V are never copied H/G times.
Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, int64_t kv_heads,
                         bool causal, double scale);

// Every head attends one shared latent (the absorbed MLA path): q (B, L1, H*r), c (B, L2, r)
// -> (B, L1, H*r), with c serving as both keys and values. The H heads are folded into the
// query rows, so each batch is one (L1*H, r) x (r, L2) product and c is never copied per head.
Tensor latent_attention(const Tensor& q, const Tensor& c, int64_t heads, bool causal, double scale);

// The same two with a tensor scale, such as a learned temperature: 0-d or (1) shared by every
// head, or (H) one per query head, in q's dtype and on its device. It multiplies each head of q
// before the attention, so the fused kernel still runs, and scale gets its gradient.
Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, int64_t kv_heads,
                         bool causal, const Tensor& scale);
Tensor latent_attention(const Tensor& q, const Tensor& c, int64_t heads, bool causal, const Tensor& scale);

// Rotary position embedding of queries and keys inside an attention module (ops/rope.h: angle
// position * base^(-2i/d), features paired rotate-half or interleaved). Off by default.
struct RoPE {
    bool enabled = false;
    double base = 10000.0;
    RoPEPairing pairing = RoPEPairing::RotateHalf;
};

// rope over the heads of a projection: t (B, L, n*dh) viewed as (B, L, n, dh), positions
// position_offset .. position_offset + L - 1 -> (B, L, n*dh). dh must be even.
Tensor rope_heads(const Tensor& t, int64_t heads, int64_t position_offset, double base,
                  RoPEPairing pairing = RoPEPairing::RotateHalf);

// A module config's RoPE entries ("rope", "rope_base", "rope_pairing"): the pairing is written
// only when interleaved, so configs from before it read as rotate_half, as they were trained.
void write_rope_config(std::map<std::string, std::string>& config, const RoPE& rope);

// The position of the first query when queries x (L1) attend keys y (L2) in a module with RoPE:
// the queries are the last L1 of the L2 positions (as the causal mask takes them), so
// L2 - L1 when L1 <= L2, else 0. Keys start at position 0. Self-attention: 0.
inline int64_t query_position_offset(int64_t l1, int64_t l2) { return l1 <= l2 ? l2 - l1 : 0; }

// What the training loop, the weight files and the `latte` program need of any attention module.
class Attention : public Module {
public:
    // x (B, L1, D1) attends y (B, L2, D2) -> (B, L1, D1).
    virtual Tensor forward(const Tensor& x, const Tensor& y, bool causal = false) const = 0;
    Tensor operator()(const Tensor& x, const Tensor& y, bool causal = false) const { return forward(x, y, causal); }
    // Numbers an autoregressive decoder caches per position (Part 14): MHA 2·H·d, GQA 2·G·d, MLA r.
    virtual int64_t kv_cache_per_position() const = 0;
    virtual int64_t input_width() const = 0;    // D1
    virtual int64_t context_width() const = 0;  // D2
};

// Builds the module a config describes (as written by config(): "module" is mha, gqa, mla or
// mla_rope, with its sizes; mha and gqa also read the optional "rope" (true|false), "rope_base" and
// "rope_pairing"; mla and mla_rope the optional "kv_norm" and "q_rank", mla_rope "rope_pairing"),
// with fresh weights from `gen`. Throws on a missing or malformed entry.
std::shared_ptr<Attention> make_attention(const std::map<std::string, std::string>& config, Generator& gen,
                                          DType dtype = DType::Float32);

}  // namespace latte::nn
