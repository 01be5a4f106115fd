#include "nn/mla.h"

#include <cmath>

#include "nn/absorbed.h"
#include "nn/mha.h"
#include "ops/ops.h"

namespace latte::nn {

MultiHeadLatentAttention::MultiHeadLatentAttention(int64_t width, int64_t heads, int64_t head_dim, int64_t rank,
                                                   Generator& gen, DType dtype)
    : width_(width), heads_(heads), head_dim_(head_dim), rank_(rank) {
    LATTE_CHECK(width > 0 && heads > 0 && head_dim > 0 && rank > 0, "MultiHeadLatentAttention: sizes must be positive, got D=",
                width, " H=", heads, " d=", head_dim, " r=", rank);
    LATTE_CHECK(width == heads * head_dim, "MultiHeadLatentAttention: D=", width, " must equal H*d=", heads, "*",
                head_dim);
    W_Q = register_module("W_Q", std::make_shared<Linear>(width, heads * head_dim, false, gen, dtype));
    W_DKV = register_module("W_DKV", std::make_shared<Linear>(width, rank, false, gen, dtype));
    W_UK = register_module("W_UK", std::make_shared<Linear>(rank, heads * head_dim, false, gen, dtype));
    W_UV = register_module("W_UV", std::make_shared<Linear>(rank, heads * head_dim, false, gen, dtype));
    W_O = register_module("W_O", std::make_shared<Linear>(heads * head_dim, width, false, gen, dtype));
}

Tensor MultiHeadLatentAttention::forward(const Tensor& x, const Tensor& y, bool causal) const {
    check_attention_inputs("MultiHeadLatentAttention", x, y, width_, width_);
    Tensor q = W_Q->forward(x);    // (B, L1, H*d)
    Tensor c = W_DKV->forward(y);  // (B, L2, r), shared by K and V
    Tensor k = W_UK->forward(c);   // (B, L2, H*d)
    Tensor v = W_UV->forward(c);   // (B, L2, H*d)
    Tensor o = grouped_attention(q, k, v, heads_, heads_, causal, 1.0 / std::sqrt(double(head_dim_)));  // (B, L1, H*d)
    return W_O->forward(o);        // (B, L1, D)
}

Tensor MultiHeadLatentAttention::forward_absorbed(const Tensor& x, const Tensor& y, bool causal) const {
    return AbsorbedLatentAttention(*this).forward(x, y, causal);
}

std::map<std::string, std::string> MultiHeadLatentAttention::config() const {
    return {{"module", "mla"}, {"D", std::to_string(width_)}, {"H", std::to_string(heads_)},
            {"d", std::to_string(head_dim_)}, {"r", std::to_string(rank_)}};
}

}  // namespace latte::nn
