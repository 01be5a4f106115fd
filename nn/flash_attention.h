// Fused attention (FlashAttention-2 on the backend): memory linear in L, no (L1, L2) score
// tensor in the forward or the backward, and GQA read in place (query head h uses K/V head h mod
// G, never copied). grouped_attention and latent_attention call it wherever the device's backend
// has the kernel (the CPU); elsewhere they use the composed or chunked forms.
#pragma once
#include "../core/tensor.h"

namespace latte::nn {

// True when `device`'s backend has the fused kernel.
bool has_flash_attention(Device device);

// q [B, H, L1, d], k [B, G, L2, d], v [B, G, L2, dv] (views with any strides; H a multiple of G)
// -> [B, H, L1, dv], a view of a (B, L1, H, dv) tensor, so that merging the heads back into
// (B, L1, H*dv) needs no copy. softmax(q k^T * scale [+ causal mask]) v per head; the causal mask
// lets query i see keys j <= i + (L2 - L1), as in scaled_dot_product_attention.
Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal);

}  // namespace latte::nn
