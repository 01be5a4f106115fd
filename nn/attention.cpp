#include "nn/attention.h"

#include <atomic>
#include <cmath>
#include <limits>

#include "core/parse.h"
#include "nn/state_text.h"
#include "nn/chunked_attention.h"
#include "nn/flash_attention.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/mla_rope.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

int64_t config_int(const std::map<std::string, std::string>& config, const std::string& key) {
    auto it = config.find(key);
    LATTE_CHECK(it != config.end(), "make_attention: config has no '", key, "'");
    int64_t value = 0;
    LATTE_CHECK(parse_int(it->second, value), "make_attention: '", key, "' = '", it->second, "' is not an integer");
    return value;
}

double config_rope_base(const std::map<std::string, std::string>& config) {
    auto it = config.find("rope_base");
    if (it == config.end()) return 10000.0;
    double value = 0;
    LATTE_CHECK(parse_double(it->second, value), "make_attention: 'rope_base' = '", it->second, "' is not a number");
    return value;
}

RoPEPairing config_rope_pairing(const std::map<std::string, std::string>& config) {
    auto it = config.find("rope_pairing");
    return it == config.end() ? RoPEPairing::RotateHalf : parse_rope_pairing(it->second, "make_attention");
}

RoPE config_rope(const std::map<std::string, std::string>& config) {
    auto it = config.find("rope");
    if (it == config.end()) return {};
    LATTE_CHECK(it->second == "true" || it->second == "false", "make_attention: 'rope' = '", it->second,
                "' is not true or false");
    return {it->second == "true", config_rope_base(config), config_rope_pairing(config)};
}

}  // namespace

void write_rope_config(std::map<std::string, std::string>& config, const RoPE& rope) {
    if (!rope.enabled) return;
    config["rope"] = "true";
    config["rope_base"] = state_text::from_double(rope.base);
    if (rope.pairing != RoPEPairing::RotateHalf) config["rope_pairing"] = rope_pairing_name(rope.pairing);
}

Tensor rope_heads(const Tensor& t, int64_t heads, int64_t position_offset, double base, RoPEPairing pairing) {
    check_defined(t, "rope_heads", "t");
    LATTE_CHECK(t.dim() == 3 && heads > 0 && t.size(2) % heads == 0, "rope_heads: expected t (B, L, ", heads,
                "*dh), got ", shape_str(t.shape()));
    const int64_t b = t.size(0), l = t.size(1), dh = t.size(2) / heads;
    return reshape(rope(reshape(t, {b, l, heads, dh}), position_offset, base, pairing), {b, l, heads * dh});
}

Tensor causal_mask(int64_t l1, int64_t l2, const TensorOptions& options, int64_t first_row, int64_t rows) {
    if (rows < 0) rows = l1 - first_row;
    LATTE_CHECK(first_row >= 0 && first_row + rows <= l1 && l1 <= l2, "causal_mask: rows [", first_row, ", ",
                first_row + rows, ") of an (L1=", l1, ", L2=", l2, ") mask (needs L1 <= L2)");
    // float: 0 and -inf are exact in it, and a GPU upload is half the size of double's.
    std::vector<float> values(static_cast<size_t>(rows * l2));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < l2; ++j)
            values[static_cast<size_t>(r * l2 + j)] =
                j <= first_row + r + (l2 - l1) ? 0.0f : -std::numeric_limits<float>::infinity();
    return from_vector(values, {rows, l2}, options);
}

namespace {
std::atomic<int64_t> memory_limit{int64_t(256) << 20};
}

void set_attention_memory_limit(int64_t bytes) { memory_limit = bytes; }
int64_t attention_memory_limit() { return memory_limit; }

namespace {
std::atomic<bool> flash_enabled{true};

// The fused kernel serves non-empty inputs on backends that have it, unless switched off.
bool use_flash(const Tensor& q, const Tensor& k, const Tensor& v) {
    return flash_enabled && q.numel() > 0 && k.numel() > 0 && v.numel() > 0 && has_flash_attention(q.device());
}
}  // namespace

void set_flash_attention_enabled(bool on) { flash_enabled = on; }
bool flash_attention_enabled() { return flash_enabled; }

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal) {
    check_defined(q, "attention", "q");
    check_defined(k, "attention", "k");
    check_defined(v, "attention", "v");
    LATTE_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2 && q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2),
                "attention: q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()),
                " do not fit (need q (..,L1,d), k (..,L2,d), v (..,L2,dv))");
    const int64_t l1 = q.size(-2), l2 = k.size(-2);
    const Shape batch = broadcast_shapes(Shape(q.shape().begin(), q.shape().end() - 2),
                                         Shape(k.shape().begin(), k.shape().end() - 2), "attention");
    const int64_t score_bytes = shape_numel(batch) * l1 * l2 * static_cast<int64_t>(dtype_size(q.dtype()));
    const int64_t limit = memory_limit;
    if (limit >= 0 && score_bytes > limit) return chunked_attention(q, k, v, scale, causal);
    // Scaling q rather than the logits touches L1*d numbers instead of L1*L2.
    Tensor logits = matmul(mul(q, scale), transpose(k, -1, -2));  // (.., L1, L2)
    if (causal) {
        LATTE_CHECK(l1 <= l2, "attention: a causal mask needs L1 <= L2, got L1=", l1, " L2=", l2);
        logits = add(logits, causal_mask(l1, l2, q.options()));
    }
    Tensor alpha = softmax(logits, -1);  // (.., L1, L2)
    return matmul(alpha, v);             // (.., L1, dv)
}

Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, int64_t kv_heads,
                         bool causal, double scale) {
    LATTE_CHECK(heads > 0 && kv_heads > 0 && heads % kv_heads == 0, "attention: H=", heads, " is not a multiple of G=",
                kv_heads);
    LATTE_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3 && q.size(0) == k.size(0) && k.size(0) == v.size(0) &&
                    k.size(1) == v.size(1) && q.size(2) % heads == 0 && k.size(2) % kv_heads == 0 &&
                    v.size(2) % kv_heads == 0 && q.size(2) / heads == k.size(2) / kv_heads,
                "attention: projections q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ",
                shape_str(v.shape()), " do not fit H=", heads, ", G=", kv_heads);
    const int64_t b = q.size(0), l1 = q.size(1), l2 = k.size(1);
    const int64_t copies = heads / kv_heads, d = q.size(2) / heads, dv = v.size(2) / kv_heads;
    if (use_flash(q, k, v)) {
        // Heads as views of the projections, the output written straight into (B, L1, H*dv).
        Tensor qh = permute(reshape(q, {b, l1, heads, d}), {0, 2, 1, 3});      // (B, H, L1, d)
        Tensor kh = permute(reshape(k, {b, l2, kv_heads, d}), {0, 2, 1, 3});   // (B, G, L2, d)
        Tensor vh = permute(reshape(v, {b, l2, kv_heads, dv}), {0, 2, 1, 3});  // (B, G, L2, dv)
        Tensor o = flash_attention(qh, kh, vh, scale, causal);                // (B, H, L1, dv)
        return reshape(permute(o, {0, 2, 1, 3}), {b, l1, heads * dv});
    }
    // Head h = n*G + g of the (B, L1, H*d) layout is (n, g) in (B, L1, H/G, G, d): h ≡ g (mod G).
    Tensor qh = permute(reshape(q, {b, l1, copies, kv_heads, d}), {0, 2, 3, 1, 4});  // (B, H/G, G, L1, d)
    Tensor kh = permute(reshape(k, {b, l2, 1, kv_heads, d}), {0, 2, 3, 1, 4});       // (B, 1, G, L2, d)
    Tensor vh = permute(reshape(v, {b, l2, 1, kv_heads, dv}), {0, 2, 3, 1, 4});      // (B, 1, G, L2, dv)
    Tensor o = scaled_dot_product_attention(qh, kh, vh, scale, causal);               // (B, H/G, G, L1, dv)
    return reshape(permute(o, {0, 3, 1, 2, 4}), {b, l1, heads * dv});                 // (B, L1, H*dv)
}

namespace {

// q (B, L, H*d) with head h multiplied by scale (shared, or scale[h]).
Tensor scale_heads(const Tensor& q, int64_t heads, const Tensor& scale, const char* op) {
    check_defined(q, op, "q");
    check_defined(scale, op, "scale");
    LATTE_CHECK(q.dim() == 3 && heads > 0 && q.size(2) % heads == 0, op, ": q ", shape_str(q.shape()),
                " is not (B, L, H*d) for H=", heads);
    LATTE_CHECK(scale.numel() == 1 ? scale.dim() <= 1 : scale.dim() == 1 && scale.size(0) == heads, op, ": scale ",
                shape_str(scale.shape()), " must be 0-d, (1) or (H)=(", heads, ")");
    LATTE_CHECK(scale.dtype() == q.dtype() && scale.device() == q.device(), op, ": scale is ",
                dtype_name(scale.dtype()), " on ", scale.device().str(), ", q is ", dtype_name(q.dtype()), " on ",
                q.device().str());
    const int64_t b = q.size(0), l = q.size(1), d = q.size(2) / heads;
    const Tensor per_head = reshape(scale, {scale.numel(), 1});  // (1, 1) or (H, 1): broadcasts over d
    return reshape(mul(reshape(q, {b, l, heads, d}), per_head), {b, l, heads * d});
}

}  // namespace

Tensor grouped_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads, int64_t kv_heads,
                         bool causal, const Tensor& scale) {
    return grouped_attention(scale_heads(q, heads, scale, "attention"), k, v, heads, kv_heads, causal, 1.0);
}

Tensor latent_attention(const Tensor& q, const Tensor& c, int64_t heads, bool causal, const Tensor& scale) {
    return latent_attention(scale_heads(q, heads, scale, "latent attention"), c, heads, causal, 1.0);
}

Tensor latent_attention(const Tensor& q, const Tensor& c, int64_t heads, bool causal, double scale) {
    check_defined(q, "latent attention", "q");
    check_defined(c, "latent attention", "c");
    LATTE_CHECK(heads > 0 && q.dim() == 3 && c.dim() == 3 && q.size(0) == c.size(0) && q.size(2) == heads * c.size(2),
                "latent attention: q ", shape_str(q.shape()), " and latents c ", shape_str(c.shape()),
                " do not fit H=", heads, " (need q (B, L1, H*r), c (B, L2, r))");
    const int64_t b = q.size(0), l1 = q.size(1), l2 = c.size(1), r = c.size(2);
    LATTE_CHECK(!causal || l1 <= l2, "latent attention: a causal mask needs L1 <= L2, got L1=", l1, " L2=", l2);
    if (use_flash(q, c, c)) {
        // Heads as views of q; the one latent is K/V head 0 of every query head (G = 1).
        Tensor qh = permute(reshape(q, {b, l1, heads, r}), {0, 2, 1, 3});  // (B, H, L1, r)
        Tensor ch = unsqueeze(c, 1);                                        // (B, 1, L2, r)
        Tensor o = flash_attention(qh, ch, ch, scale, causal);             // (B, H, L1, r)
        return reshape(permute(o, {0, 2, 1, 3}), {b, l1, heads * r});
    }
    const int64_t score_bytes = b * heads * l1 * l2 * static_cast<int64_t>(dtype_size(q.dtype()));
    const int64_t limit = memory_limit;
    if (limit >= 0 && score_bytes > limit) {
        // Long sequences: heads as a batch dim over the one latent (broadcast, not copied), in blocks.
        Tensor qh = permute(reshape(q, {b, l1, heads, r}), {0, 2, 1, 3});  // (B, H, L1, r)
        Tensor ch = unsqueeze(c, 1);                                        // (B, 1, L2, r)
        Tensor o = chunked_attention(qh, ch, ch, scale, causal);            // (B, H, L1, r)
        return reshape(permute(o, {0, 2, 1, 3}), {b, l1, heads * r});
    }
    Tensor rows = reshape(q, {b, l1 * heads, r});                                  // row l*H + h
    Tensor logits = matmul(mul(rows, scale), transpose(c, 1, 2));                  // (B, L1*H, L2)
    if (causal) {
        Tensor mask = reshape(causal_mask(l1, l2, q.options()), {l1, 1, l2});     // shared by the H heads
        logits = reshape(add(reshape(logits, {b, l1, heads, l2}), mask), {b, l1 * heads, l2});
    }
    Tensor o = matmul(softmax(logits, -1), c);                                     // (B, L1*H, r)
    return reshape(o, {b, l1, heads * r});
}

std::shared_ptr<Attention> make_attention(const std::map<std::string, std::string>& config, Generator& gen,
                                          DType dtype) {
    auto it = config.find("module");
    LATTE_CHECK(it != config.end(), "make_attention: config has no 'module' (mha, gqa, mla or mla_rope)");
    const std::string& kind = it->second;
    if (kind == "mha")
        return std::make_shared<MultiHeadAttention>(config_int(config, "D_1"), config_int(config, "D_2"),
                                                    config_int(config, "D_qk"), config_int(config, "D_v"),
                                                    config_int(config, "H"), gen, dtype, config_rope(config));
    if (kind == "gqa")
        return std::make_shared<GroupedQueryAttention>(config_int(config, "D_1"), config_int(config, "D_2"),
                                                       config_int(config, "D_qk"), config_int(config, "D_v"),
                                                       config_int(config, "H"), config_int(config, "G"), gen, dtype,
                                                       config_rope(config));
    if (kind == "mla")
        return std::make_shared<MultiHeadLatentAttention>(config_int(config, "D"), config_int(config, "H"),
                                                          config_int(config, "d"), config_int(config, "r"), gen, dtype,
                                                          read_latent_options(config, "make_attention"));
    if (kind == "mla_rope")
        return std::make_shared<MultiHeadLatentAttentionRoPE>(
            config_int(config, "D"), config_int(config, "H"), config_int(config, "d"), config_int(config, "r"),
            config_int(config, "d_R"), gen, dtype, config_rope_base(config), read_latent_options(config, "make_attention"),
            config_rope_pairing(config));
    LATTE_FAIL("make_attention: unknown module '", kind, "' (expected mha, gqa, mla or mla_rope)");
}

}  // namespace latte::nn
