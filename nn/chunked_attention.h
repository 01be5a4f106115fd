// Attention in blocks of query rows, with memory linear in the sequence lengths (the idea of
// FlashAttention, built from latte's ops so it runs on every device): the forward keeps only q,
// k, v and the output; the backward recomputes each block's probabilities (one more score
// product and softmax per block). No (L1, L2) matrix is ever stored, only (block, L2) at a time.
#pragma once
#include "../core/tensor.h"

namespace latte::nn {

// Same contract as scaled_dot_product_attention: q (..., L1, d), k (..., L2, d), v (..., L2, dv)
// with broadcast batch dims -> (..., L1, dv); the causal mask is aligned bottom-right.
Tensor chunked_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                         int64_t block = 128);

}  // namespace latte::nn
