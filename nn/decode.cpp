#include "nn/decode.h"

#include <cmath>

#include "nn/absorbed.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/mla_rope.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

void check_step_input(const char* who, const Tensor& x, int64_t batch, int64_t width) {
    check_defined(x, who, "x");
    LATTE_CHECK(x.dim() == 3 && x.size(0) == batch && x.size(1) > 0 && x.size(2) == width, who,
                ": expected new tokens x (", batch, ", n, ", width, "), got ", shape_str(x.shape()));
}

// MHA and GQA: K and V of every position are cached (2*G*d numbers each).
class KVDecoder final : public Decoder {
public:
    KVDecoder(std::shared_ptr<Linear> W_Q, std::shared_ptr<Linear> W_K, std::shared_ptr<Linear> W_V,
              std::shared_ptr<Linear> W_O, int64_t heads, int64_t kv_heads, RoPE rope, int64_t batch,
              int64_t capacity)
        : W_Q_(std::move(W_Q)), W_K_(std::move(W_K)), W_V_(std::move(W_V)), W_O_(std::move(W_O)),
          heads_(heads), kv_heads_(kv_heads), rope_(rope), batch_(batch),
          keys_(batch, capacity, W_K_->out_features(), W_K_->weight().options()),
          values_(batch, capacity, W_V_->out_features(), W_V_->weight().options()) {}

    Tensor step(const Tensor& x) override {
        NoGradGuard no_grad;
        const int64_t position = length();
        append(x);  // checks x
        Tensor k = keys_.filled(), v = values_.filled();  // (B, length, G*d), (B, length, G*dv)
        const double scale = 1.0 / std::sqrt(double(W_K_->out_features() / kv_heads_));
        Tensor q = W_Q_->forward(x);
        if (rope_.enabled) q = rope_heads(q, heads_, position, rope_.base, rope_.pairing);
        return W_O_->forward(grouped_attention(q, k, v, heads_, kv_heads_, true, scale));
    }
    void append(const Tensor& x) override {
        check_step_input("decode (K/V cache)", x, batch_, W_Q_->in_features());
        NoGradGuard no_grad;
        Tensor k = W_K_->forward(x);  // cached rotated, at its position
        if (rope_.enabled) k = rope_heads(k, kv_heads_, length(), rope_.base, rope_.pairing);
        keys_.append(k);
        values_.append(W_V_->forward(x));
    }
    int64_t length() const override { return keys_.length(); }
    int64_t cache_numbers_per_position() const override { return keys_.width() + values_.width(); }
    int64_t cache_bytes() const override { return keys_.bytes() + values_.bytes(); }

private:
    std::shared_ptr<Linear> W_Q_, W_K_, W_V_, W_O_;
    int64_t heads_, kv_heads_;
    RoPE rope_;
    int64_t batch_;
    PositionCache keys_, values_;
};

// MLA: only the latent c = W_DKV x is cached (r numbers); the absorbed path attends it directly.
class LatentDecoder final : public Decoder {
public:
    LatentDecoder(const MultiHeadLatentAttention& mla, int64_t batch, int64_t capacity)
        : absorbed_(build(mla)), batch_(batch),
          latents_(batch, capacity, mla.rank(), mla.W_DKV->weight().options()) {}

    Tensor step(const Tensor& x) override {
        NoGradGuard no_grad;
        append(x);  // checks x
        return absorbed_.attend(x, latents_.filled(), true);  // latents (B, length, r)
    }
    void append(const Tensor& x) override {
        check_step_input("decode (latent cache)", x, batch_, absorbed_.width());
        NoGradGuard no_grad;
        latents_.append(absorbed_.latent(x));
    }
    int64_t length() const override { return latents_.length(); }
    int64_t cache_numbers_per_position() const override { return latents_.width(); }
    int64_t cache_bytes() const override { return latents_.bytes(); }

private:
    static AbsorbedLatentAttention build(const MultiHeadLatentAttention& mla) {
        NoGradGuard no_grad;
        return AbsorbedLatentAttention(mla);
    }
    AbsorbedLatentAttention absorbed_;
    int64_t batch_;
    PositionCache latents_;
};

// MLA with decoupled RoPE: the latent c and the rotated shared key rope(k_R) are cached
// (r + d_R numbers); the absorbed path attends them directly.
class LatentRoPEDecoder final : public Decoder {
public:
    LatentRoPEDecoder(const MultiHeadLatentAttentionRoPE& mla, int64_t batch, int64_t capacity)
        : absorbed_(build(mla)), batch_(batch),
          latents_(batch, capacity, absorbed_.cache_width(), mla.W_DKV->weight().options()) {}

    Tensor step(const Tensor& x) override {
        NoGradGuard no_grad;
        const int64_t position = length();
        append(x);  // checks x
        return absorbed_.attend(x, latents_.filled(), true, position);  // latents (B, length, r + d_R)
    }
    void append(const Tensor& x) override {
        check_step_input("decode (latent + rope key cache)", x, batch_, absorbed_.width());
        NoGradGuard no_grad;
        latents_.append(absorbed_.latent(x, length()));
    }
    int64_t length() const override { return latents_.length(); }
    int64_t cache_numbers_per_position() const override { return latents_.width(); }
    int64_t cache_bytes() const override { return latents_.bytes(); }

private:
    static AbsorbedLatentAttentionRoPE build(const MultiHeadLatentAttentionRoPE& mla) {
        NoGradGuard no_grad;
        return AbsorbedLatentAttentionRoPE(mla);
    }
    AbsorbedLatentAttentionRoPE absorbed_;
    int64_t batch_;
    PositionCache latents_;
};

}  // namespace

PositionCache::PositionCache(int64_t batch, int64_t capacity, int64_t width, const TensorOptions& options) {
    LATTE_CHECK(batch > 0 && capacity > 0 && width > 0, "PositionCache: sizes must be positive, got batch=", batch,
                " capacity=", capacity, " width=", width);
    storage_ = zeros({batch, capacity, width}, TensorOptions(options).with_requires_grad(false));
}

Tensor PositionCache::filled() const { return narrow(storage_, 1, 0, length_); }

Tensor PositionCache::append(const Tensor& rows) {
    check_defined(rows, "PositionCache::append", "rows");
    LATTE_CHECK(rows.dim() == 3 && rows.size(0) == storage_.size(0) && rows.size(2) == width(),
                "PositionCache::append: expected rows (", storage_.size(0), ", n, ", width(), "), got ",
                shape_str(rows.shape()));
    LATTE_CHECK(length_ + rows.size(1) <= capacity(), "PositionCache::append: ", rows.size(1),
                " more positions do not fit: ", length_, " of ", capacity(), " are used");
    NoGradGuard no_grad;
    copy_(narrow(storage_, 1, length_, rows.size(1)), rows.detach());
    length_ += rows.size(1);
    return filled();
}

int64_t PositionCache::bytes() const {
    return storage_.size(0) * length_ * width() * static_cast<int64_t>(dtype_size(storage_.dtype()));
}

std::unique_ptr<Decoder> make_decoder(const Attention& module, int64_t batch, int64_t capacity) {
    LATTE_CHECK(module.input_width() == module.context_width(), "make_decoder: self-attention decoding needs D_1 = "
                "D_2, got D_1=", module.input_width(), " D_2=", module.context_width());
    if (auto* m = dynamic_cast<const MultiHeadAttention*>(&module))
        return std::make_unique<KVDecoder>(m->W_Q, m->W_K, m->W_V, m->W_O, m->heads(), m->heads(), m->rope(), batch,
                                           capacity);
    if (auto* g = dynamic_cast<const GroupedQueryAttention*>(&module))
        return std::make_unique<KVDecoder>(g->W_Q, g->W_K, g->W_V, g->W_O, g->heads(), g->kv_heads(), g->rope(),
                                           batch, capacity);
    if (auto* l = dynamic_cast<const MultiHeadLatentAttention*>(&module))
        return std::make_unique<LatentDecoder>(*l, batch, capacity);
    if (auto* l = dynamic_cast<const MultiHeadLatentAttentionRoPE*>(&module))
        return std::make_unique<LatentRoPEDecoder>(*l, batch, capacity);
    LATTE_FAIL("make_decoder: unsupported module kind (expected MHA, GQA, MLA or MLA with RoPE)");
}

}  // namespace latte::nn
