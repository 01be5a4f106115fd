#include "nn/gqa.h"

#include <cmath>

#include "nn/mha.h"
#include "nn/state_text.h"
#include "ops/ops.h"

namespace latte::nn {

GroupedQueryAttention::GroupedQueryAttention(int64_t d1, int64_t d2, int64_t d_qk, int64_t d_v, int64_t heads,
                                             int64_t kv_heads, Generator& gen, DType dtype, RoPE rope)
    : rope_(rope), d1_(d1), d2_(d2), d_qk_(d_qk), d_v_(d_v), heads_(heads), kv_heads_(kv_heads) {
    LATTE_CHECK(d1 > 0 && d2 > 0 && d_qk > 0 && d_v > 0 && heads > 0 && kv_heads > 0,
                "GroupedQueryAttention: sizes must be positive, got D1=", d1, " D2=", d2, " D_qk=", d_qk, " D_v=", d_v,
                " H=", heads, " G=", kv_heads);
    LATTE_CHECK(heads % kv_heads == 0, "GroupedQueryAttention: H=", heads, " is not a multiple of G=", kv_heads);
    LATTE_CHECK(!rope.enabled || (d_qk % 2 == 0 && std::isfinite(rope.base) && rope.base > 0), 
                "GroupedQueryAttention: RoPE needs an even D_qk and a finite base > 0, got D_qk=", d_qk, " base=", rope.base);
    W_Q = register_module("W_Q", std::make_shared<Linear>(d1, heads * d_qk, false, gen, dtype));
    W_K = register_module("W_K", std::make_shared<Linear>(d2, kv_heads * d_qk, false, gen, dtype));
    W_V = register_module("W_V", std::make_shared<Linear>(d2, kv_heads * d_v, false, gen, dtype));
    W_O = register_module("W_O", std::make_shared<Linear>(heads * d_v, d1, false, gen, dtype));
}

Tensor GroupedQueryAttention::forward(const Tensor& x, const Tensor& y, bool causal) const {
    check_attention_inputs("GroupedQueryAttention", x, y, d1_, d2_);
    Tensor q = W_Q->forward(x);  // (B, L1, H*D_qk)
    Tensor k = W_K->forward(y);  // (B, L2, G*D_qk)
    Tensor v = W_V->forward(y);  // (B, L2, G*D_v)
    if (rope_.enabled) {  // queries are the last L1 of the L2 positions
        q = rope_heads(q, heads_, query_position_offset(x.size(1), y.size(1)), rope_.base, rope_.pairing);
        k = rope_heads(k, kv_heads_, 0, rope_.base, rope_.pairing);
    }
    Tensor o = grouped_attention(q, k, v, heads_, kv_heads_, causal, 1.0 / std::sqrt(double(d_qk_)));  // (B, L1, H*D_v)
    return W_O->forward(o);  // (B, L1, D1)
}

std::map<std::string, std::string> GroupedQueryAttention::config() const {
    std::map<std::string, std::string> c{{"module", "gqa"}, {"D_1", std::to_string(d1_)}, {"D_2", std::to_string(d2_)},
            {"D_qk", std::to_string(d_qk_)}, {"D_v", std::to_string(d_v_)}, {"H", std::to_string(heads_)},
            {"G", std::to_string(kv_heads_)}};
    write_rope_config(c, rope_);
    return c;
}

}  // namespace latte::nn
