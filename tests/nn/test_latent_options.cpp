// Issue 19: MLA as DeepSeek-V2 defines it. The latent norm (RMSNorm on c_KV) and query
// compression (c_Q = RMSNorm(W_DQ x)) keep the absorbed path and the latent cache exact; both
// modules pass gradcheck with them; RoPE pairs rotate-half or interleaved.
#include <cmath>
#include <filesystem>

#include "core/autograd.h"
#include "nn/checkpoint.h"
#include "nn/conversion.h"
#include "nn/decode.h"
#include "nn/gradcheck.h"
#include "nn/mla.h"
#include "nn/mla_rope.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

// The option sets under test: the norm alone, the query compression alone, both.
const std::vector<LatentOptions> kOptions = {{true, 0}, {false, 5}, {true, 5}};

std::string describe(const LatentOptions& o) {
    return std::string("kv_norm=") + (o.kv_norm ? "on" : "off") + " q_rank=" + std::to_string(o.q_rank);
}

// RMSNorm over the last dim written out from its definition, with the weight (no latte norm op).
Tensor rms_by_definition(const Tensor& x, const Tensor& weight) {
    const Tensor ms = mean(mul(x, x), {-1}, true);
    return mul(div(x, sqrt(add(ms, 1e-6))), weight);
}

// Equal weights in two modules of the same shape.
void copy_weights(const Module& from, Module& to) {
    NoGradGuard no_grad;
    const auto src = from.named_parameters(), dst = to.named_parameters();
    REQUIRE(src.size() == dst.size());
    for (size_t i = 0; i < src.size(); ++i) {
        REQUIRE(src[i].first == dst[i].first);
        copy_(dst[i].second, src[i].second);
    }
}

// The norm weights start at 1; moved off it, a weight the code forgot to apply would show.
void perturb_norm_weights(Module& module, uint64_t seed) {
    NoGradGuard no_grad;
    for (const auto& [name, p] : module.named_parameters())
        if (name.size() > 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0)
            copy_(p, add(mul(test::randn64(p.shape(), seed++, false), 0.3), 1.0));
}

// A norm module's weight.
Tensor weight_of(const std::shared_ptr<RMSNorm>& norm) { return norm->named_parameters().at(0).second; }

// Decoding token by token, and by a prefill then steps, equals the full causal forward.
void check_decoding(const Attention& module, const Tensor& x, int64_t cache_width) {
    const int64_t B = x.size(0), T = x.size(1);
    const Tensor full = module.forward(x, x, true);
    auto decoder = make_decoder(module, B, T);
    REQUIRE(decoder->cache_numbers_per_position() == cache_width);
    std::vector<Tensor> outputs;
    for (int64_t t = 0; t < T; ++t) {
        outputs.push_back(decoder->step(narrow(x, 1, t, 1)));
        REQUIRE(relative_error(outputs.back(), narrow(full, 1, t, 1)) < 1e-10);
    }
    REQUIRE(decoder->cache_bytes() == B * T * cache_width * 8);
    auto prefilled = make_decoder(module, B, T);
    std::vector<Tensor> parts{prefilled->step(narrow(x, 1, 0, 3))};
    for (int64_t t = 3; t < T; ++t) parts.push_back(prefilled->step(narrow(x, 1, t, 1)));
    REQUIRE(relative_error(cat(parts, 1), full) < 1e-10);
}

}  // namespace

TEST_CASE("MLA with a latent norm and query compression: forward by definition, absorbed = vanilla",
          "[nn][mla][latent_options][absorbed]") {
    const int64_t D = 12, H = 3, d = 4;
    const Tensor x = test::randn64({2, 5, D}, 30, false), y = test::randn64({2, 8, D}, 31, false);
    for (const LatentOptions& o : kOptions)
        for (int64_t r : {2, 7}) {  // r < d (precomputed by Auto) and r > d (factored by Auto)
            CAPTURE(describe(o), r);
            Generator gen(r);
            MultiHeadLatentAttention mla(D, H, d, r, gen, DType::Float64, o);
            REQUIRE(!mla.is_plain());
            perturb_norm_weights(mla, 50);
            const Tensor q_in =
                o.q_rank > 0 ? rms_by_definition(mla.norms().W_DQ->forward(x), weight_of(mla.norms().q_norm)) : x;
            Tensor c = mla.W_DKV->forward(y);
            if (o.kv_norm) c = rms_by_definition(c, weight_of(mla.norms().kv_norm));
            REQUIRE(relative_error(mla.latent(y), c) < 1e-13);
            for (bool causal : {false, true}) {
                CAPTURE(causal);
                const Tensor want = mla.W_O->forward(grouped_attention(
                    mla.W_Q->forward(q_in), mla.W_UK->forward(c), mla.W_UV->forward(c), H, H, causal, 0.5));
                const Tensor vanilla = mla.forward(x, y, causal);
                REQUIRE(relative_error(vanilla, want) < 1e-12);
                for (AbsorbedForm form : {AbsorbedForm::Precomputed, AbsorbedForm::Factored}) {
                    AbsorbedLatentAttention absorbed(mla, form);
                    REQUIRE(relative_error(absorbed.forward(x, y, causal), vanilla) < 1e-12);
                    // The cache holds the normalised latent.
                    REQUIRE(relative_error(absorbed.latent(y), c) < 1e-13);
                }
            }
        }
}

TEST_CASE("MLA + RoPE with a latent norm and query compression: absorbed = vanilla, by definition",
          "[nn][mla_rope][latent_options][absorbed]") {
    const int64_t D = 12, H = 3, d = 4, dr = 4;
    const Tensor x = test::randn64({2, 5, D}, 32, false), y = test::randn64({2, 8, D}, 33, false);
    for (const LatentOptions& o : kOptions)
        for (RoPEPairing pairing : {RoPEPairing::RotateHalf, RoPEPairing::Interleaved})
            for (int64_t r : {2, 7}) {
                CAPTURE(describe(o), rope_pairing_name(pairing), r);
                Generator gen(r + 10);
                MultiHeadLatentAttentionRoPE mla(D, H, d, r, dr, gen, DType::Float64, 10000.0, o, pairing);
                perturb_norm_weights(mla, 60);
                const Tensor q_in =
                    o.q_rank > 0 ? rms_by_definition(mla.norms().W_DQ->forward(x), weight_of(mla.norms().q_norm)) : x;
                Tensor c = mla.W_DKV->forward(y);
                if (o.kv_norm) c = rms_by_definition(c, weight_of(mla.norms().kv_norm));
                // Per head: [W_Q_h q_in, rope(W_QR_h q_in)] against [W_UK_h c, rope(W_KR y)], keys at 0..L2-1.
                const int64_t l1 = x.size(1), l2 = y.size(1);
                const Tensor qr = rope_heads(mla.W_QR->forward(q_in), H, l2 - l1, 10000.0, pairing);
                const Tensor kr = rope_heads(mla.W_KR->forward(y), 1, 0, 10000.0, pairing);
                const Tensor q = mla.W_Q->forward(q_in), k = mla.W_UK->forward(c), v = mla.W_UV->forward(c);
                for (bool causal : {false, true}) {
                    CAPTURE(causal);
                    std::vector<Tensor> heads;
                    for (int64_t h = 0; h < H; ++h) {
                        Tensor s = add(matmul(narrow(q, 2, h * d, d), transpose(narrow(k, 2, h * d, d), 1, 2)),
                                       matmul(narrow(qr, 2, h * dr, dr), transpose(kr, 1, 2)));
                        s = mul(s, 1.0 / std::sqrt(double(d + dr)));
                        if (causal) s = add(s, causal_mask(l1, l2, s.options()));
                        heads.push_back(matmul(softmax(s, -1), narrow(v, 2, h * d, d)));
                    }
                    const Tensor want = mla.W_O->forward(cat(heads, 2));
                    const Tensor vanilla = mla.forward(x, y, causal);
                    REQUIRE(relative_error(vanilla, want) < 1e-12);
                    for (AbsorbedForm form : {AbsorbedForm::Precomputed, AbsorbedForm::Factored}) {
                        AbsorbedLatentAttentionRoPE absorbed(mla, form);
                        REQUIRE(relative_error(absorbed.forward(x, y, causal), vanilla) < 1e-12);
                        // The cache: the normalised latent, then the rotated shared key.
                        REQUIRE(relative_error(absorbed.latent(y), cat({c, kr}, -1)) < 1e-13);
                    }
                }
            }
}

TEST_CASE("cached decoding with the latent options equals the full causal forward", "[nn][latent_options][decode]") {
    const int64_t D = 12, H = 3, d = 4, r = 5, dr = 2;
    const Tensor x = test::randn64({2, 9, D}, 34, false);
    for (const LatentOptions& o : kOptions) {
        CAPTURE(describe(o));
        Generator gen(3);
        MultiHeadLatentAttention mla(D, H, d, r, gen, DType::Float64, o);
        perturb_norm_weights(mla, 70);
        REQUIRE(mla.kv_cache_per_position() == r);
        check_decoding(mla, x, r);
        for (RoPEPairing pairing : {RoPEPairing::RotateHalf, RoPEPairing::Interleaved}) {
            CAPTURE(rope_pairing_name(pairing));
            MultiHeadLatentAttentionRoPE rope(D, H, d, r, dr, gen, DType::Float64, 10000.0, o, pairing);
            perturb_norm_weights(rope, 80);
            REQUIRE(rope.kv_cache_per_position() == r + dr);
            check_decoding(rope, x, r + dr);
        }
    }
}

TEST_CASE("MLA and MLA + RoPE with the latent options pass gradcheck on both paths", "[nn][latent_options][gradcheck]") {
    const Tensor x = test::randn64({2, 3, 6}, 40, false), y = test::randn64({2, 4, 6}, 41, false);
    for (const LatentOptions& o : {LatentOptions{true, 0}, LatentOptions{false, 4}, LatentOptions{true, 4}}) {
        CAPTURE(describe(o));
        Generator gen(21);
        MultiHeadLatentAttention mla(6, 3, 2, 3, gen, DType::Float64, o);
        MultiHeadLatentAttentionRoPE rope(6, 3, 2, 3, 2, gen, DType::Float64, 10000.0, o, RoPEPairing::Interleaved);
        perturb_norm_weights(mla, 90);
        perturb_norm_weights(rope, 95);
        for (bool causal : {false, true}) {
            CAPTURE(causal);
            GradcheckResult result =
                gradcheck_module(mla, [&](MultiHeadLatentAttention& m) { return m.forward_absorbed(x, y, causal); });
            INFO(result.message);
            REQUIRE(result.ok);
            result = gradcheck_module(mla, [&](MultiHeadLatentAttention& m) { return m(x, y, causal); });
            INFO(result.message);
            REQUIRE(result.ok);
            result = gradcheck_module(rope, [&](MultiHeadLatentAttentionRoPE& m) { return m(x, y, causal); });
            INFO(result.message);
            REQUIRE(result.ok);
            result = gradcheck_module(
                rope, [&](MultiHeadLatentAttentionRoPE& m) { return m.forward_absorbed(x, y, causal); });
            INFO(result.message);
            REQUIRE(result.ok);
        }
    }
}

TEST_CASE("the latent norm makes MLA invariant to the scale of W_DKV; the plain MLA is not", "[nn][latent_options]") {
    // RMSNorm(a W_DKV y) = RMSNorm(W_DKV y) for a > 0 (up to eps): the latent's size no longer varies
    // with the input's or W_DKV's, which is what DeepSeek-V2's norm is for.
    const Tensor x = test::randn64({2, 6, 12}, 42, false);
    for (bool kv_norm : {true, false}) {
        CAPTURE(kv_norm);
        Generator gen(5);
        MultiHeadLatentAttention mla(12, 3, 4, 5, gen, DType::Float64, {kv_norm, 0});
        const Tensor before = mla.forward(x, x, true);
        mla.W_DKV->set_weight(mul(mla.W_DKV->weight(), 3.0));
        const double change = relative_error(mla.forward(x, x, true), before);
        if (kv_norm)
            REQUIRE(change < 1e-5);  // eps = 1e-6 against a mean square ~0.3 moves it ~1e-6
        else
            REQUIRE(change > 1e-2);
    }
}

TEST_CASE("latent options: names, shapes, config round trip, files and refusals", "[nn][latent_options]") {
    Generator gen(1);
    MultiHeadLatentAttention mla(12, 3, 4, 5, gen, DType::Float64, {true, 6});
    std::vector<std::string> names;
    std::vector<Shape> shapes;
    for (const auto& [name, p] : mla.named_parameters()) {
        names.push_back(name);
        shapes.push_back(p.shape());
    }
    REQUIRE(names == std::vector<std::string>{"W_Q.weight", "W_DKV.weight", "W_UK.weight", "W_UV.weight",
                                              "W_O.weight", "W_DQ.weight", "q_norm.weight", "kv_norm.weight"});
    REQUIRE(shapes == std::vector<Shape>{{12, 6}, {5, 12}, {12, 5}, {12, 5}, {12, 12}, {6, 12}, {6}, {5}});
    const auto config = mla.config();
    REQUIRE(config.at("kv_norm") == "true");
    REQUIRE(config.at("q_rank") == "6");
    perturb_norm_weights(mla, 7);
    const Tensor x = test::randn64({1, 4, 12}, 8, false);
    {  // make_attention rebuilds the same module; a file saves and loads it with its norms
        Generator again(1);
        auto rebuilt = make_attention(config, again, DType::Float64);
        copy_weights(mla, *rebuilt);
        REQUIRE(relative_error(rebuilt->forward(x, x, true), mla.forward(x, x, true)) == 0.0);
        test::ScratchDir dir("latent_options_file");
        const std::string path = dir.dir + "/mla.safetensors";
        save(mla, path);
        auto loaded = load_attention(path, DType::Float64);
        REQUIRE(relative_error(loaded->forward(x, x, true), mla.forward(x, x, true)) == 0.0);
    }
    // The plain MLA's config has no option entries (files from before them load as plain).
    Generator gen2(2);
    MultiHeadLatentAttention plain(12, 3, 4, 5, gen2);
    REQUIRE(plain.is_plain());
    REQUIRE(plain.config().count("kv_norm") == 0);
    REQUIRE(plain.config().count("q_rank") == 0);
    // A GQA is a plain MLA, never a normed one.
    REQUIRE(!is_gqa_representable(mla, 3));
    REQUIRE_THROWS_WITH(to_gqa(mla, 3), Catch::Contains("to_gqa: this MLA has a latent norm (kv_norm) and query "
                                                        "compression (q_rank 6)"));
    REQUIRE_THROWS_WITH(to_gqa(mla, 3), Catch::Contains("only the plain MLA converts"));
    REQUIRE_THROWS_WITH(MultiHeadLatentAttention(12, 3, 4, 5, gen, DType::Float32, {false, -1}),
                        "MultiHeadLatentAttention: q_rank must be 0 (no query compression) or positive, got -1");
    auto bad = config;
    bad["kv_norm"] = "yes";
    REQUIRE_THROWS_WITH(make_attention(bad, gen), "make_attention: 'kv_norm' = 'yes' is not true or false");
    bad = config;
    bad["q_rank"] = "-2";
    REQUIRE_THROWS_WITH(make_attention(bad, gen), "make_attention: 'q_rank' = '-2' is not an integer >= 0");
}
