#include "nn/conversion.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "nn/mla_rope.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

// The SVD factors of one matrix, truncated to `rank`: W_UM = U[:, :rank],
// W_DKV = diag(S[:rank]) Vh[:rank, :].
struct Truncated {
    Tensor up, down;
};

Truncated truncated_svd(const Tensor& m, int64_t rank) {
    SVD f = svd(m);
    Tensor up = contiguous(narrow(f.U, 1, 0, rank));
    Tensor down = mul(narrow(f.Vh, 0, 0, rank), unsqueeze(narrow(f.S, 0, 0, rank), 1));
    return {up, down};
}

// The SVD runs on the CPU in float64, wherever the module lives.
Tensor weight64(const std::shared_ptr<Linear>& linear) {
    return to(to(linear->weight().detach(), Device::cpu()), DType::Float64);
}

Tensor stacked_kv(const GroupedQueryAttention& gqa) { return cat({weight64(gqa.W_K), weight64(gqa.W_V)}, 0); }

// A converted language model (built on the CPU) takes every non-attention tensor of the source by
// name (embedding, norms, MLPs, head), then moves to the source's device.
void copy_all_but_attention(const DecoderLM& from, DecoderLM& to_model) {
    std::map<std::string, Tensor> source;
    for (const auto& [name, p] : from.named_parameters()) source.emplace(name, p);
    for (const auto& [name, p] : to_model.named_parameters())
        if (name.find(".attn.") == std::string::npos) copy_(p, to(source.at(name), Device::cpu()));
    to_model.to(from.device());
}

}  // namespace

LatentFactors gqa_to_mla(const Tensor& W_M_GQA) {
    check_defined(W_M_GQA, "gqa_to_mla", "W_M_GQA");
    LATTE_CHECK(W_M_GQA.dim() == 2 && W_M_GQA.size(0) > 0 && W_M_GQA.size(1) % W_M_GQA.size(0) == 0,
                "gqa_to_mla: W_M_GQA must be (r, D) with r dividing D, got ", shape_str(W_M_GQA.shape()));
    NoGradGuard no_grad;
    const int64_t r = W_M_GQA.size(0), D = W_M_GQA.size(1);
    Tensor tiled = repeat(W_M_GQA.detach(), {D / r, 1});  // (D, D): Part 6's W~
    Truncated t = truncated_svd(tiled, r);
    const double mse = mse_loss(matmul(t.up, t.down), tiled).item();
    return {t.down, t.up, mse};
}

std::shared_ptr<DecoderLM> to_mla(const DecoderLM& lm, int64_t rank) {
    const DecoderLMConfig& c = lm.lm_config();
    LATTE_CHECK(c.attention == AttentionKind::GQA, "to_mla: needs a DecoderLM with attention gqa, got ",
                attention_kind_name(c.attention));
    LATTE_CHECK(!c.rope, "to_mla: this gqa DecoderLM (D=", c.width, " H=", c.heads, " G=", c.kv_heads,
                ") has RoPE on q and k, which no MLA reproduces: the rotation of each key depends on its position, so "
                "keys cannot be rebuilt from one position-free latent W_DKV x (train it with RoPE off)");
    const int64_t full = std::min(2 * c.kv_heads * c.head_dim, c.width);
    if (rank == 0) rank = full;
    LATTE_CHECK(rank > 0 && rank <= full, "to_mla: rank ", rank, " must be in [1, min(2*G*d, D) = ", full, "]");
    NoGradGuard no_grad;
    DecoderLMConfig mc = c;
    mc.attention = AttentionKind::MLA;
    mc.rank = rank;
    mc.latent_norm = false;  // the exact target: a norm on the latent is no linear map
    mc.q_rank = 0;
    mc.kv_heads = c.heads;
    mc.rope = false;
    mc.dtype = lm.parameters().front().dtype();
    Generator unused(0);
    auto mla = std::make_shared<DecoderLM>(mc, unused);
    // Each block's attention is replaced by its exact conversion; the rest is copied by name.
    for (size_t i = 0; i < size_t(c.layers); ++i) {
        const auto* gqa = dynamic_cast<const GroupedQueryAttention*>(lm.layer(i).attn.get());
        LATTE_CHECK(gqa != nullptr, "to_mla: layer ", i, " of the DecoderLM does not hold a GroupedQueryAttention");
        std::map<std::string, Tensor> from;
        for (const auto& [name, p] : to_mla(*gqa, rank)->named_parameters()) from.emplace(name, p);
        for (const auto& [name, p] : mla->layer(i).attn->named_parameters())
            copy_(p, to(from.at(name), Device::cpu()));
    }
    copy_all_but_attention(lm, *mla);
    return mla;
}

namespace {

// Rows [first, first + n) of each of the `blocks` row blocks of W (blocks*rows, D) -> (blocks*n, D).
Tensor block_rows(const Tensor& W, int64_t blocks, int64_t first, int64_t n) {
    const int64_t rows = W.size(0) / blocks, D = W.size(1);
    return reshape(narrow(reshape(W, {blocks, rows, D}), 1, first, n), {blocks * n, D});
}

}  // namespace

std::shared_ptr<DecoderLM> to_mla_rope(const DecoderLM& lm, int64_t rank, int64_t rope_dim) {
    const DecoderLMConfig& c = lm.lm_config();
    LATTE_CHECK(c.attention == AttentionKind::GQA && c.rope, "to_mla_rope: needs a DecoderLM with attention gqa and "
                "RoPE on q and k, got ", attention_kind_name(c.attention), c.rope ? "" : " without RoPE",
                " (a RoPE-free gqa converts exactly with to_mla)");
    const int64_t H = c.heads, d = c.head_dim, D = c.width;
    LATTE_CHECK(c.kv_heads == 1, "to_mla_rope: this gqa DecoderLM has G=", c.kv_heads, " K/V heads; MLA + RoPE shares "
                "one rotary key among all heads, so only G = 1 keeps its rotary dims");
    LATTE_CHECK(rope_dim >= 2 && rope_dim % 2 == 0 && rope_dim <= d, "to_mla_rope: rope_dim must be even and in [2, "
                "d = ", d, "], got ", rope_dim);
    const int64_t full = std::min(2 * d, D);
    if (rank == 0) rank = full;
    LATTE_CHECK(rank > 0 && rank <= full, "to_mla_rope: rank ", rank, " must be in [1, min(2*d, D) = ", full, "]");
    NoGradGuard no_grad;
    const int64_t p = rope_dim / 2;
    const bool interleaved = c.rope_pairing == RoPEPairing::Interleaved;
    // The kept rows of a head, in the order a rope over rope_dim features reads them: rotate-half
    // pairs (i, i + d/2) -> rows [0, p) then [d/2, d/2 + p); interleaved pairs (2i, 2i+1) -> [0, 2p).
    auto kept = [&](const Tensor& W, int64_t heads) {
        if (interleaved) return block_rows(W, heads, 0, rope_dim);
        return reshape(cat({reshape(block_rows(W, heads, 0, p), {heads, p, D}),
                            reshape(block_rows(W, heads, d / 2, p), {heads, p, D})}, 1),
                       {heads * rope_dim, D});
    };
    std::vector<double> keep_mask(static_cast<size_t>(d), 1.0);  // 0 on the kept rows
    for (int64_t i = 0; i < p; ++i) {
        keep_mask[size_t(interleaved ? 2 * i : i)] = 0;
        keep_mask[size_t(interleaved ? 2 * i + 1 : d / 2 + i)] = 0;
    }
    const Tensor nope_rows = from_vector(keep_mask, {1, d, 1}, TensorOptions{}.with_dtype(DType::Float64));
    auto position_free = [&](const Tensor& W, int64_t heads) {
        return reshape(mul(reshape(W, {heads, d, D}), nope_rows), {heads * d, D});
    };
    const double scale = std::sqrt(double(d + rope_dim) / double(d));

    DecoderLMConfig mc = c;
    mc.attention = AttentionKind::MLARoPE;
    mc.rank = rank;
    mc.rope_dim = rope_dim;
    mc.rope_base = std::pow(c.rope_base, double(rope_dim) / double(d));
    mc.latent_norm = false;
    mc.q_rank = 0;
    mc.kv_heads = H;
    mc.dtype = lm.parameters().front().dtype();
    Generator unused(0);
    auto out = std::make_shared<DecoderLM>(mc, unused);
    for (size_t i = 0; i < size_t(c.layers); ++i) {
        const auto* gqa = dynamic_cast<const GroupedQueryAttention*>(lm.layer(i).attn.get());
        LATTE_CHECK(gqa != nullptr, "to_mla_rope: layer ", i, " of the DecoderLM does not hold a GroupedQueryAttention");
        auto* mla = dynamic_cast<MultiHeadLatentAttentionRoPE*>(out->layer(i).attn.get());
        const Tensor W_Q = weight64(gqa->W_Q), W_K = weight64(gqa->W_K), W_V = weight64(gqa->W_V);
        Truncated t = truncated_svd(cat({position_free(W_K, 1), W_V}, 0), rank);
        mla->W_Q->set_weight(mul(position_free(W_Q, H), scale));
        mla->W_QR->set_weight(mul(kept(W_Q, H), scale));
        mla->W_DKV->set_weight(t.down);
        mla->W_KR->set_weight(kept(W_K, 1));
        // Every query head reads the one K/V head: the MHA-form rows are H copies (Part 6).
        mla->W_UK->set_weight(repeat(narrow(t.up, 0, 0, d), {H, 1}));
        mla->W_UV->set_weight(repeat(narrow(t.up, 0, d, d), {H, 1}));
        mla->W_O->set_weight(weight64(gqa->W_O));
    }
    copy_all_but_attention(lm, *out);
    return out;
}

int64_t rank_needed(const GroupedQueryAttention& gqa) {
    NoGradGuard no_grad;
    return matrix_rank(stacked_kv(gqa));
}

std::shared_ptr<MultiHeadLatentAttention> to_mla(const GroupedQueryAttention& gqa, int64_t rank) {
    const int64_t D = gqa.input_width(), H = gqa.heads(), G = gqa.kv_heads(), d = gqa.d_qk();
    LATTE_CHECK(gqa.context_width() == D && gqa.d_v() == d && D == H * d,
                "to_mla: needs a GQA with D_1 = D_2 = H*D_qk and D_qk = D_v (MLA's shape), got D_1=", D,
                " D_2=", gqa.context_width(), " H=", H, " D_qk=", d, " D_v=", gqa.d_v());
    LATTE_CHECK(!gqa.rope().enabled, "to_mla: this GQA (D=", D, " H=", H, " G=", G,
                ") has RoPE on q and k, which no MLA reproduces: the rotation of each key depends on its position, so "
                "keys cannot be rebuilt from one position-free latent W_DKV x");
    const int64_t full = std::min(2 * G * d, D);
    if (rank == 0) rank = full;
    LATTE_CHECK(rank > 0 && rank <= full, "to_mla: rank ", rank, " must be in [1, min(2*G*d, D) = ", full, "]");
    NoGradGuard no_grad;
    // One shared latent for keys and values: factor [W_K; W_V] (2*G*d, D) = [U_K; U_V] W_DKV.
    Truncated t = truncated_svd(stacked_kv(gqa), rank);
    Tensor up_k = narrow(t.up, 0, 0, G * d), up_v = narrow(t.up, 0, G * d, G * d);
    Generator unused(0);
    auto mla = std::make_shared<MultiHeadLatentAttention>(D, H, d, rank, unused, gqa.W_Q->weight().dtype());
    mla->W_Q->set_weight(gqa.W_Q->weight());
    mla->W_O->set_weight(gqa.W_O->weight());
    mla->W_DKV->set_weight(t.down);
    // Query head h = n*G + g reads K/V head g: the MHA-form rows are H/G stacked copies (Part 6).
    mla->W_UK->set_weight(repeat(up_k, {H / G, 1}));
    mla->W_UV->set_weight(repeat(up_v, {H / G, 1}));
    mla->to(gqa.device());
    return mla;
}

bool is_gqa_representable(const Tensor& W, int64_t heads, int64_t kv_heads, double rtol) {
    check_defined(W, "is_gqa_representable", "W");
    LATTE_CHECK(W.dim() == 2 && heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && W.size(0) % heads == 0,
                "is_gqa_representable: W ", shape_str(W.shape()), " must be (H*d, D) with G dividing H, got H=",
                heads, " G=", kv_heads);
    NoGradGuard no_grad;
    const int64_t rows = W.size(0) / heads * kv_heads;  // G*d rows per copy
    Tensor blocks = reshape(W.detach(), {heads / kv_heads, rows, W.size(1)});
    Tensor gap = sub(blocks, narrow(blocks, 0, 0, 1));  // each copy minus the first
    LATTE_CHECK(rtol >= 0, "is_gqa_representable: rtol must be a non-negative number, got ", rtol);
    double largest = 0, worst = 0;
    // A NaN or Inf anywhere makes the blocks incomparable: not representable (std::max would skip a NaN).
    for (double v : W.to_vector()) {
        if (!std::isfinite(v)) return false;
        largest = std::max(largest, std::abs(v));
    }
    for (double v : gap.to_vector()) worst = std::max(worst, std::abs(v));
    return worst <= rtol * largest;
}

// The spec's MLA only: with kv_norm the keys are W_UK RMSNorm(W_DKV y), not linear in y, and with
// q_rank the queries are not W_Q x, so no GQA has the same outputs.
static void check_plain(const MultiHeadLatentAttention& mla, const char* who) {
    LATTE_CHECK(mla.is_plain(), who, ": this MLA has ", mla.options().kv_norm ? "a latent norm (kv_norm)" : "",
                mla.options().kv_norm && mla.options().q_rank > 0 ? " and " : "",
                mla.options().q_rank > 0 ? "query compression (q_rank " + std::to_string(mla.options().q_rank) + ")" : "",
                ": its keys or queries are not linear maps of the input, so it is no GQA; only the plain MLA converts");
}

bool is_gqa_representable(const MultiHeadLatentAttention& mla, int64_t kv_heads, double rtol) {
    if (!mla.is_plain()) return false;  // see check_plain
    NoGradGuard no_grad;
    const Tensor& down = mla.W_DKV->weight();
    return is_gqa_representable(matmul(mla.W_UK->weight(), down), mla.heads(), kv_heads, rtol) &&
           is_gqa_representable(matmul(mla.W_UV->weight(), down), mla.heads(), kv_heads, rtol);
}

std::shared_ptr<GroupedQueryAttention> to_gqa(const MultiHeadLatentAttention& mla, int64_t kv_heads, double rtol) {
    const int64_t D = mla.input_width(), H = mla.heads(), d = mla.head_dim();
    LATTE_CHECK(kv_heads > 0 && H % kv_heads == 0, "to_gqa: G=", kv_heads, " does not divide H=", H);
    check_plain(mla, "to_gqa");
    LATTE_CHECK(is_gqa_representable(mla, kv_heads, rtol), "to_gqa: this MLA (D=", D, " H=", H, " d=", d,
                " r=", mla.rank(), ") is not a GQA with G=", kv_heads,
                ": the H/G row blocks of W_UK W_DKV or W_UV W_DKV differ (Part 11)");
    NoGradGuard no_grad;
    Generator unused(0);
    auto gqa = std::make_shared<GroupedQueryAttention>(D, D, d, d, H, kv_heads, unused, mla.W_Q->weight().dtype());
    const Tensor& down = mla.W_DKV->weight();
    gqa->W_Q->set_weight(mla.W_Q->weight());
    gqa->W_K->set_weight(matmul(narrow(mla.W_UK->weight(), 0, 0, kv_heads * d), down));
    gqa->W_V->set_weight(matmul(narrow(mla.W_UV->weight(), 0, 0, kv_heads * d), down));
    gqa->W_O->set_weight(mla.W_O->weight());
    gqa->to(mla.device());
    return gqa;
}

}  // namespace latte::nn
