#include "nn/mla_rope.h"

#include <cmath>

#include "nn/mha.h"
#include "nn/state_text.h"
#include "ops/ops.h"

namespace latte::nn {

MultiHeadLatentAttentionRoPE::MultiHeadLatentAttentionRoPE(int64_t width, int64_t heads, int64_t head_dim,
                                                           int64_t rank, int64_t rope_dim, Generator& gen,
                                                           DType dtype, double rope_base, LatentOptions options,
                                                           RoPEPairing pairing)
    : width_(width), heads_(heads), head_dim_(head_dim), rank_(rank), rope_dim_(rope_dim), rope_base_(rope_base),
      pairing_(pairing) {
    LATTE_CHECK(width > 0 && heads > 0 && head_dim > 0 && rank > 0 && rope_dim > 0,
                "MultiHeadLatentAttentionRoPE: sizes must be positive, got D=", width, " H=", heads, " d=", head_dim,
                " r=", rank, " d_R=", rope_dim);
    LATTE_CHECK(width == heads * head_dim, "MultiHeadLatentAttentionRoPE: D=", width, " must equal H*d=", heads, "*",
                head_dim);
    LATTE_CHECK(rope_dim % 2 == 0, "MultiHeadLatentAttentionRoPE: the rope dim d_R must be even, got ", rope_dim);
    LATTE_CHECK(std::isfinite(rope_base) && rope_base > 0, "MultiHeadLatentAttentionRoPE: rope base must be finite "
                "and > 0, got ", rope_base);
    const int64_t q_in = options.q_rank > 0 ? options.q_rank : width;
    W_Q = register_module("W_Q", std::make_shared<Linear>(q_in, heads * head_dim, false, gen, dtype));
    W_QR = register_module("W_QR", std::make_shared<Linear>(q_in, heads * rope_dim, false, gen, dtype));
    W_DKV = register_module("W_DKV", std::make_shared<Linear>(width, rank, false, gen, dtype));
    W_KR = register_module("W_KR", std::make_shared<Linear>(width, rope_dim, false, gen, dtype));
    W_UK = register_module("W_UK", std::make_shared<Linear>(rank, heads * head_dim, false, gen, dtype));
    W_UV = register_module("W_UV", std::make_shared<Linear>(rank, heads * head_dim, false, gen, dtype));
    W_O = register_module("W_O", std::make_shared<Linear>(heads * head_dim, width, false, gen, dtype));
    // After the seven above, so that the plain module draws and orders its weights as before.
    norms_ = LatentNorms("MultiHeadLatentAttentionRoPE", width, rank, options, gen, dtype);
    for (const auto& [name, m] : norms_.modules()) register_module(name, m);
}

double MultiHeadLatentAttentionRoPE::scale() const { return 1.0 / std::sqrt(double(head_dim_ + rope_dim_)); }

Tensor MultiHeadLatentAttentionRoPE::rope_queries(const Tensor& q_in, int64_t position_offset) const {
    return rope_heads(W_QR->forward(q_in), heads_, position_offset, rope_base_, pairing_);  // (B, L1, H*d_R)
}

Tensor MultiHeadLatentAttentionRoPE::rope_key(const Tensor& y, int64_t position_offset) const {
    return rope_heads(W_KR->forward(y), 1, position_offset, rope_base_, pairing_);  // (B, L2, d_R)
}

Tensor MultiHeadLatentAttentionRoPE::forward(const Tensor& x, const Tensor& y, bool causal) const {
    check_attention_inputs("MultiHeadLatentAttentionRoPE", x, y, width_, width_);
    const int64_t b = x.size(0), l1 = x.size(1), l2 = y.size(1), H = heads_, d = head_dim_, dr = rope_dim_;
    const Tensor q_in = query_input(x);                                                       // (B, L1, D or q_rank)
    Tensor q = reshape(W_Q->forward(q_in), {b, l1, H, d});                                    // (B, L1, H, d)
    Tensor qr = reshape(rope_queries(q_in, query_position_offset(l1, l2)), {b, l1, H, dr});  // (B, L1, H, d_R)
    Tensor c = latent(y);                                                                     // (B, L2, r)
    Tensor k = reshape(W_UK->forward(c), {b, l2, H, d});                                   // (B, L2, H, d)
    Tensor kr = expand(reshape(rope_key(y, 0), {b, l2, 1, dr}), {b, l2, H, dr});           // shared by the heads
    Tensor v = W_UV->forward(c);                                                           // (B, L2, H*d)
    Tensor q_full = reshape(cat({q, qr}, -1), {b, l1, H * (d + dr)});
    Tensor k_full = reshape(cat({k, kr}, -1), {b, l2, H * (d + dr)});
    Tensor o = grouped_attention(q_full, k_full, v, H, H, causal, scale());  // (B, L1, H*d)
    return W_O->forward(o);                                                  // (B, L1, D)
}

Tensor MultiHeadLatentAttentionRoPE::forward_absorbed(const Tensor& x, const Tensor& y, bool causal) const {
    return AbsorbedLatentAttentionRoPE(*this).forward(x, y, causal);
}

std::map<std::string, std::string> MultiHeadLatentAttentionRoPE::config() const {
    std::map<std::string, std::string> c{{"module", "mla_rope"}, {"D", std::to_string(width_)},
            {"H", std::to_string(heads_)}, {"d", std::to_string(head_dim_)}, {"r", std::to_string(rank_)},
            {"d_R", std::to_string(rope_dim_)}, {"rope_base", state_text::from_double(rope_base_)}};
    if (pairing_ != RoPEPairing::RotateHalf) c["rope_pairing"] = rope_pairing_name(pairing_);
    write_latent_options(c, options());
    return c;
}

AbsorbedLatentAttentionRoPE::AbsorbedLatentAttentionRoPE(const MultiHeadLatentAttentionRoPE& mla, AbsorbedForm form)
    : mla_(&mla),
      factored_(form == AbsorbedForm::Factored || (form == AbsorbedForm::Auto && mla.rank() > mla.head_dim())) {
    if (factored_) return;
    const ReducedMatrices m = reduced_matrices(mla.W_DKV->weight(), mla.W_UK->weight(), mla.W_UV->weight(),
                                               mla.W_Q->weight(), mla.W_O->weight(), mla.heads());
    // reduced_matrices scales W_Q_hat by sqrt(r/d) for a 1/sqrt(r) attention; here the scale is
    // 1/sqrt(d + d_R) for both parts, so the plain W_UK_h^T W_Q_h is wanted.
    W_Q_hat_ = mul(m.W_Q_hat, std::sqrt(double(mla.head_dim()) / double(mla.rank())));
    W_O_hat_ = m.W_O_hat;
    snapshot_ = WeightSnapshot({{"W_UK", mla.W_UK->weight()}, {"W_UV", mla.W_UV->weight()},
                                {"W_Q", mla.W_Q->weight()}, {"W_O", mla.W_O->weight()}});
}

Tensor AbsorbedLatentAttentionRoPE::queries(const Tensor& x, int64_t position_offset) const {
    const int64_t b = x.size(0), l = x.size(1), H = mla_->heads(), d = mla_->head_dim(), r = mla_->rank();
    const Tensor q_in = mla_->query_input(x);  // (B, L1, D or q_rank)
    Tensor q_hat;                              // (B, L1, H, r): W_UK_h^T W_Q_h q_in per head
    if (!factored_) {
        q_hat = reshape(matmul(q_in, transpose(W_Q_hat_, 0, 1)), {b, l, H, r});
    } else {
        Tensor q = mla_->W_Q->forward(q_in);  // (B, L1, H*d); per head W_UK_h^T q_h as (H, B*L1, d) @ (H, d, r)
        Tensor heads = matmul(transpose(reshape(q, {b * l, H, d}), 0, 1), reshape(mla_->W_UK->weight(), {H, d, r}));
        q_hat = reshape(transpose(heads, 0, 1), {b, l, H, r});
    }
    Tensor qr = reshape(mla_->rope_queries(q_in, position_offset), {b, l, H, mla_->rope_dim()});
    return reshape(cat({q_hat, qr}, -1), {b, l, H * (r + mla_->rope_dim())});
}

Tensor AbsorbedLatentAttentionRoPE::output(const Tensor& o) const {
    if (!factored_) return matmul(o, transpose(W_O_hat_, 0, 1));
    const int64_t b = o.size(0), l = o.size(1), H = mla_->heads(), d = mla_->head_dim(), r = mla_->rank();
    // Per head h: W_UV_h o_h, as (H, B*L1, r) @ (H, r, d), then W_O over the concatenated heads.
    Tensor heads =
        matmul(transpose(reshape(o, {b * l, H, r}), 0, 1), transpose(reshape(mla_->W_UV->weight(), {H, d, r}), 1, 2));
    return mla_->W_O->forward(reshape(transpose(heads, 0, 1), {b, l, H * d}));
}

Tensor AbsorbedLatentAttentionRoPE::latent(const Tensor& y, int64_t position_offset) const {
    check_defined(y, "AbsorbedLatentAttentionRoPE", "y");
    LATTE_CHECK(y.dim() == 3 && y.size(2) == width(), "AbsorbedLatentAttentionRoPE: expected y (B, L2, ", width(),
                "), got ", shape_str(y.shape()));
    snapshot_.check_unchanged("AbsorbedLatentAttentionRoPE");
    return cat({mla_->latent(y), mla_->rope_key(y, position_offset)}, -1);  // (B, L2, r + d_R)
}

Tensor AbsorbedLatentAttentionRoPE::attend(const Tensor& x, const Tensor& latents, bool causal,
                                           int64_t position_offset) const {
    check_defined(x, "AbsorbedLatentAttentionRoPE", "x");
    check_defined(latents, "AbsorbedLatentAttentionRoPE", "latents");
    LATTE_CHECK(x.dim() == 3 && latents.dim() == 3 && x.size(0) == latents.size(0) && x.size(2) == width() &&
                    latents.size(2) == cache_width(),
                "AbsorbedLatentAttentionRoPE: expected x (B, L1, ", width(), ") and latents (B, L2, ", cache_width(),
                "), got x ", shape_str(x.shape()), " and latents ", shape_str(latents.shape()));
    snapshot_.check_unchanged("AbsorbedLatentAttentionRoPE");
    if (position_offset < 0) position_offset = query_position_offset(x.size(1), latents.size(1));
    // One K/V head (G = 1) for all H query heads: keys [c, rope(k_R)], values c (a view).
    Tensor c = narrow(latents, 2, 0, mla_->rank());
    Tensor o = grouped_attention(queries(x, position_offset), latents, c, mla_->heads(), 1, causal, mla_->scale());
    return output(o);  // (B, L1, D)
}

Tensor AbsorbedLatentAttentionRoPE::forward(const Tensor& x, const Tensor& y, bool causal) const {
    check_attention_inputs("AbsorbedLatentAttentionRoPE", x, y, width(), width());
    return attend(x, latent(y, 0), causal);
}

}  // namespace latte::nn
