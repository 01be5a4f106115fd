// Issue 11 item 3: MLA with decoupled RoPE (DeepSeek-V2): the absorbed path and the decoder that
// caches the latent plus the shared rotary key stay exact.
#include <cmath>

#include "core/autograd.h"
#include "nn/decode.h"
#include "nn/gradcheck.h"
#include "nn/mla_rope.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

// The score written out per head from the definition, as one dense check of forward():
// (q_h · k_h + rope(q_R,h) · rope(k_R)) / sqrt(d + d_R), then softmax and W_O.
Tensor by_definition(const MultiHeadLatentAttentionRoPE& m, const Tensor& x, const Tensor& y, bool causal) {
    const int64_t b = x.size(0), l1 = x.size(1), l2 = y.size(1), H = m.heads(), d = m.head_dim(), dr = m.rope_dim();
    const Tensor q = m.W_Q->forward(x), c = m.W_DKV->forward(y);
    const Tensor k = m.W_UK->forward(c), v = m.W_UV->forward(c);
    const Tensor qr = m.rope_queries(x, query_position_offset(l1, l2)), kr = m.rope_key(y, 0);
    std::vector<Tensor> heads;
    for (int64_t h = 0; h < H; ++h) {
        const Tensor s_nope = matmul(narrow(q, 2, h * d, d), transpose(narrow(k, 2, h * d, d), 1, 2));
        const Tensor s_rope = matmul(narrow(qr, 2, h * dr, dr), transpose(kr, 1, 2));
        Tensor s = mul(add(s_nope, s_rope), 1.0 / std::sqrt(double(d + dr)));  // (B, L1, L2)
        if (causal) s = add(s, causal_mask(l1, l2, s.options()));
        heads.push_back(matmul(softmax(s, -1), narrow(v, 2, h * d, d)));
    }
    (void)b;
    return m.W_O->forward(cat(heads, 2));
}

}  // namespace

TEST_CASE("MLA with decoupled RoPE: forward equals the per-head definition, absorbed equals vanilla",
          "[nn][mla_rope][absorbed]") {
    const int64_t D = 12, H = 3, d = 4, dr = 4;
    for (int64_t r : {2, 7}) {  // r < d (precomputed by Auto) and r > d (factored by Auto)
        Generator gen(r);
        MultiHeadLatentAttentionRoPE mla(D, H, d, r, dr, gen, DType::Float64);
        const Tensor x = test::randn64({2, 5, D}, 30, false), y = test::randn64({2, 8, D}, 31, false);
        for (bool causal : {false, true}) {
            CAPTURE(r, causal);
            const Tensor vanilla = mla.forward(x, y, causal);
            REQUIRE(vanilla.shape() == Shape{2, 5, D});
            REQUIRE(relative_error(vanilla, by_definition(mla, x, y, causal)) < 1e-12);
            REQUIRE(relative_error(mla.forward_absorbed(x, y, causal), vanilla) < 1e-12);
            for (AbsorbedForm form : {AbsorbedForm::Precomputed, AbsorbedForm::Factored}) {
                AbsorbedLatentAttentionRoPE absorbed(mla, form);
                REQUIRE(absorbed.factored() == (form == AbsorbedForm::Factored));
                REQUIRE(relative_error(absorbed.forward(x, y, causal), vanilla) < 1e-12);
            }
            const Tensor self = mla.forward(y, y, causal);
            REQUIRE(relative_error(mla.forward_absorbed(y, y, causal), self) < 1e-12);
        }
    }
}

TEST_CASE("MLA with decoupled RoPE: scores depend on relative positions only", "[nn][mla_rope]") {
    // Shifting every position by the same offset leaves q_R · k_R unchanged (rope is a rotation).
    Generator gen(3);
    MultiHeadLatentAttentionRoPE mla(8, 2, 4, 3, 4, gen, DType::Float64);
    const Tensor x = test::randn64({1, 4, 8}, 5, false);
    AbsorbedLatentAttentionRoPE absorbed(mla);
    const Tensor at0 = absorbed.attend(x, absorbed.latent(x, 0), true, 0);
    const Tensor at9 = absorbed.attend(x, absorbed.latent(x, 9), true, 9);
    REQUIRE(relative_error(at9, at0) < 1e-12);
    REQUIRE(relative_error(at0, mla.forward(x, x, true)) < 1e-12);
    // The rotary part matters: zeroing W_KR changes the outputs.
    MultiHeadLatentAttentionRoPE copy(8, 2, 4, 3, 4, gen, DType::Float64);
    {
        NoGradGuard no_grad;
        for (size_t i = 0; i < mla.named_parameters().size(); ++i)
            copy_(copy.named_parameters()[i].second, mla.named_parameters()[i].second);
    }
    copy.W_KR->set_weight(zeros({4, 8}, test::f64()));
    REQUIRE(relative_error(copy.forward(x, x, true), at0) > 1e-6);
}

TEST_CASE("decoding MLA with decoupled RoPE from the latent + rotary key cache equals the full causal forward",
          "[nn][mla_rope][decode]") {
    const int64_t D = 12, H = 3, d = 4, r = 5, dr = 2, B = 2, T = 9;
    Generator gen(1);
    MultiHeadLatentAttentionRoPE mla(D, H, d, r, dr, gen, DType::Float64);
    REQUIRE(mla.kv_cache_per_position() == r + dr);
    const Tensor x = test::randn64({B, T, D}, 2, false);
    const Tensor full = mla.forward(x, x, true);
    // The composed (non-fused) attention, as on devices without the fused kernel, agrees too.
    set_flash_attention_enabled(false);
    const Tensor composed = mla.forward(x, x, true), composed_absorbed = mla.forward_absorbed(x, x, true);
    auto composed_decoder = make_decoder(mla, B, T);
    const Tensor composed_decoded = composed_decoder->step(x);
    set_flash_attention_enabled(true);
    REQUIRE(relative_error(composed, full) < 1e-12);
    REQUIRE(relative_error(composed_absorbed, full) < 1e-12);
    REQUIRE(relative_error(composed_decoded, full) < 1e-12);
    auto decoder = make_decoder(mla, B, T);
    REQUIRE(decoder->cache_numbers_per_position() == r + dr);
    std::vector<Tensor> outputs;
    for (int64_t t = 0; t < T; ++t) {
        outputs.push_back(decoder->step(narrow(x, 1, t, 1)));
        REQUIRE(decoder->length() == t + 1);
        REQUIRE(decoder->cache_bytes() == B * (t + 1) * (r + dr) * 8);
        // Every position so far, not only the last.
        REQUIRE(relative_error(outputs.back(), narrow(full, 1, t, 1)) < 1e-12);
    }
    REQUIRE(relative_error(cat(outputs, 1), full) < 1e-12);
    auto prefilled = make_decoder(mla, B, T);
    std::vector<Tensor> parts{prefilled->step(narrow(x, 1, 0, 4))};
    for (int64_t t = 4; t < T; ++t) parts.push_back(prefilled->step(narrow(x, 1, t, 1)));
    REQUIRE(relative_error(cat(parts, 1), full) < 1e-12);
    auto appended = make_decoder(mla, B, T);
    appended->append(narrow(x, 1, 0, 6));
    REQUIRE(relative_error(appended->step(narrow(x, 1, 6, 3)), narrow(full, 1, 6, 3)) < 1e-12);
    REQUIRE_THROWS_WITH(appended->step(zeros({3, 1, D}, test::f64())),
                        "decode (latent + rope key cache): expected new tokens x (2, n, 12), got [3,1,12]");
}

TEST_CASE("MLA with decoupled RoPE: gradcheck of both paths, names, config and checks", "[nn][mla_rope][gradcheck]") {
    Generator gen(21);
    MultiHeadLatentAttentionRoPE mla(6, 3, 2, 3, 2, gen, DType::Float64);
    const Tensor x = test::randn64({2, 3, 6}, 40, false), y = test::randn64({2, 4, 6}, 41, false);
    for (bool causal : {false, true}) {
        CAPTURE(causal);
        GradcheckResult result = gradcheck_module(mla, [&](MultiHeadLatentAttentionRoPE& m) { return m(x, y, causal); });
        INFO(result.message);
        REQUIRE(result.ok);
        result = gradcheck_module(mla, [&](MultiHeadLatentAttentionRoPE& m) { return m.forward_absorbed(x, y, causal); });
        INFO(result.message);
        REQUIRE(result.ok);
    }
    std::vector<std::string> names;
    for (const auto& [name, _] : mla.named_parameters()) names.push_back(name);
    REQUIRE(names == std::vector<std::string>{"W_Q.weight", "W_QR.weight", "W_DKV.weight", "W_KR.weight",
                                              "W_UK.weight", "W_UV.weight", "W_O.weight"});
    const auto config = mla.config();
    REQUIRE(config.at("module") == "mla_rope");
    REQUIRE(config.at("d_R") == "2");
    Generator again(21);
    auto rebuilt = make_attention(config, again, DType::Float64);
    REQUIRE(relative_error(rebuilt->forward(x, y, true), mla.forward(x, y, true)) == 0.0);
    REQUIRE_THROWS_WITH(MultiHeadLatentAttentionRoPE(6, 3, 2, 3, 3, gen),
                        "MultiHeadLatentAttentionRoPE: the rope dim d_R must be even, got 3");
    REQUIRE_THROWS_WITH(MultiHeadLatentAttentionRoPE(6, 2, 2, 3, 2, gen),
                        "MultiHeadLatentAttentionRoPE: D=6 must equal H*d=2*2");
}
