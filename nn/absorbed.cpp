#include "nn/absorbed.h"

#include <cmath>

#include "nn/mha.h"
#include "ops/ops.h"

namespace latte::nn {

ReducedMatrices reduced_matrices(const Tensor& W_DKV, const Tensor& W_UK, const Tensor& W_UV, const Tensor& W_Q,
                                 const Tensor& W_O, int64_t heads) {
    for (const Tensor* t : {&W_DKV, &W_UK, &W_UV, &W_Q, &W_O}) check_defined(*t, "reduced_matrices", "weight");
    const bool two_d = W_DKV.dim() == 2 && W_UK.dim() == 2 && W_UV.dim() == 2 && W_Q.dim() == 2 && W_O.dim() == 2;
    const int64_t r = two_d ? W_DKV.size(0) : 0;
    LATTE_CHECK(two_d && heads > 0 && W_UK.size(0) % heads == 0 && W_UV.size(0) % heads == 0 && W_UK.size(1) == r &&
                    W_UV.size(1) == r && W_Q.size(0) == W_UK.size(0) && W_O.size(1) == W_UV.size(0),
                "reduced_matrices: need W_DKV (r, D), W_UK (H*d, r), W_UV (H*dv, r), W_Q (H*d, D1), W_O (D_out, H*dv) "
                "with H=", heads, ", got W_DKV ", shape_str(W_DKV.shape()), ", W_UK ", shape_str(W_UK.shape()),
                ", W_UV ", shape_str(W_UV.shape()), ", W_Q ", shape_str(W_Q.shape()), ", W_O ",
                shape_str(W_O.shape()));
    const int64_t H = heads, d = W_UK.size(0) / H, dv = W_UV.size(0) / H, D1 = W_Q.size(1), Dout = W_O.size(0);
    // Per head h: W_UK_h^T W_Q_h (r, D1) as one batched matmul (H, r, d) @ (H, d, D1).
    Tensor q_hat = reshape(matmul(transpose(reshape(W_UK, {H, d, r}), 1, 2), reshape(W_Q, {H, d, D1})), {H * r, D1});
    // Per head h: W_O_h W_UV_h (D_out, r) as (H, D_out, dv) @ (H, dv, r), laid side by side.
    Tensor o_hat = reshape(
        transpose(matmul(transpose(reshape(W_O, {Dout, H, dv}), 0, 1), reshape(W_UV, {H, dv, r})), 0, 1), {Dout, H * r});
    return {W_DKV, W_DKV, mul(q_hat, std::sqrt(double(r) / double(d))), o_hat};
}

WeightSnapshot::WeightSnapshot(const std::vector<std::pair<std::string, Tensor>>& weights) {
    for (const auto& [name, w] : weights) stamps_.push_back({name, w, w.storage(), w.storage()->version()});
}

void WeightSnapshot::check_unchanged(const std::string& who) const {
    for (const Stamp& s : stamps_)
        LATTE_CHECK(s.weight.storage() == s.storage && s.storage->version() == s.version, who, ": the module's ",
                    s.name, " changed (an optimizer step, a load, set_weight or Module::to) after the absorbed "
                    "matrices were computed from it; build the absorbed form (or the decoder) again");
}

AbsorbedLatentAttention::AbsorbedLatentAttention(const MultiHeadLatentAttention& mla, AbsorbedForm form)
    : mla_(&mla), W_Q_(mla.W_Q->weight()), W_UK_(mla.W_UK->weight()), W_UV_(mla.W_UV->weight()), W_O_(mla.W_O->weight()),
      heads_(mla.heads()), head_dim_(mla.head_dim()), rank_(mla.rank()), width_(mla.input_width()),
      factored_(form == AbsorbedForm::Factored || (form == AbsorbedForm::Auto && rank_ > head_dim_)) {
    // The factored form never reads W_Q_hat or W_O_hat, so they are built only when used.
    if (factored_) {
        m_.W_K_hat = m_.W_V_hat = mla.W_DKV->weight();
        return;
    }
    m_ = reduced_matrices(mla.W_DKV->weight(), W_UK_, W_UV_, W_Q_, W_O_, heads_);
    // W_Q_hat and W_O_hat come from these four; W_DKV is read live, as in the module.
    snapshot_ = WeightSnapshot({{"W_UK", W_UK_}, {"W_UV", W_UV_}, {"W_Q", W_Q_}, {"W_O", W_O_}});
}

Tensor AbsorbedLatentAttention::queries(const Tensor& x) const {
    const Tensor q_in = mla_->query_input(x);  // (B, L1, D or q_rank)
    if (!factored_) return matmul(q_in, transpose(m_.W_Q_hat, 0, 1));
    const int64_t b = x.size(0), l = x.size(1), H = heads_, d = head_dim_, r = rank_;
    // Per head h: W_UK_h^T q_h, as (H, B*L1, d) @ (H, d, r) over strided views of q.
    Tensor q = mul(matmul(q_in, transpose(W_Q_, 0, 1)), std::sqrt(double(r) / double(d)));  // (B, L1, H*d)
    Tensor q_hat = matmul(transpose(reshape(q, {b * l, H, d}), 0, 1), reshape(W_UK_, {H, d, r}));  // (H, B*L1, r)
    return reshape(transpose(q_hat, 0, 1), {b, l, H * r});
}

Tensor AbsorbedLatentAttention::output(const Tensor& o) const {
    if (!factored_) return matmul(o, transpose(m_.W_O_hat, 0, 1));
    const int64_t b = o.size(0), l = o.size(1), H = heads_, d = head_dim_, r = rank_;
    // Per head h: W_UV_h o_h, as (H, B*L1, r) @ (H, r, d), then W_O over the concatenated heads.
    Tensor heads = matmul(transpose(reshape(o, {b * l, H, r}), 0, 1), transpose(reshape(W_UV_, {H, d, r}), 1, 2));
    return matmul(reshape(transpose(heads, 0, 1), {b, l, H * d}), transpose(W_O_, 0, 1));
}

Tensor AbsorbedLatentAttention::latent(const Tensor& y) const {
    check_defined(y, "AbsorbedLatentAttention", "y");
    LATTE_CHECK(y.dim() == 3 && y.size(2) == width_, "AbsorbedLatentAttention: expected y (B, L2, ", width_,
                "), got ", shape_str(y.shape()));
    snapshot_.check_unchanged("AbsorbedLatentAttention");
    return mla_->latent(y);  // W_K_hat y, normalised when the module has kv_norm
}

Tensor AbsorbedLatentAttention::attend(const Tensor& x, const Tensor& c, bool causal) const {
    check_defined(x, "AbsorbedLatentAttention", "x");
    check_defined(c, "AbsorbedLatentAttention", "c");
    LATTE_CHECK(x.dim() == 3 && c.dim() == 3 && x.size(0) == c.size(0) && x.size(2) == width_ && c.size(2) == rank_,
                "AbsorbedLatentAttention: expected x (B, L1, ", width_, ") and latents c (B, L2, ", rank_, "), got x ",
                shape_str(x.shape()), " and c ", shape_str(c.shape()));
    snapshot_.check_unchanged("AbsorbedLatentAttention");
    Tensor o = latent_attention(queries(x), c, heads_, causal, 1.0 / std::sqrt(double(rank_)));  // (B, L1, H*r)
    return output(o);                                                                            // (B, L1, D)
}

Tensor AbsorbedLatentAttention::forward(const Tensor& x, const Tensor& y, bool causal) const {
    check_attention_inputs("AbsorbedLatentAttention", x, y, width_, width_);
    return attend(x, latent(y), causal);
}

}  // namespace latte::nn
