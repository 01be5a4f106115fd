// Issue 11 item 2: the language-model building blocks, DecoderLM against a per-token loop
// reference, gradcheck, parameter names and optimizer parameter groups.
#include <cmath>
#include <map>
#include <string>

#include "core/autograd.h"
#include "nn/container.h"
#include "nn/decode.h"
#include "nn/decoder_lm.h"
#include "nn/embedding.h"
#include "nn/gqa.h"
#include "nn/gradcheck.h"
#include "nn/mha.h"
#include "nn/mlp.h"
#include "nn/norm.h"
#include "nn/optim.h"
#include "nn/param_groups.h"
#include "nn/transformer.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

using Vec = std::vector<double>;

Tensor ids_tensor(const std::vector<double>& values, const Shape& shape) {
    return from_vector(values, shape, TensorOptions{}.with_dtype(DType::Int64));
}

// A weight as a row-major table of doubles.
struct Mat {
    int64_t rows = 0, cols = 0;
    Vec v;
};

struct Weights {
    std::map<std::string, Mat> m;
    const Mat& operator()(const std::string& name) const {
        auto it = m.find(name);
        if (it == m.end()) throw std::runtime_error("reference: no parameter " + name);
        return it->second;
    }
};

Weights weights_of(const Module& module) {
    Weights w;
    for (const auto& [name, t] : module.named_parameters())
        w.m[name] = {t.size(0), t.dim() == 2 ? t.size(1) : 1, to(t.detach(), DType::Float64).to_vector<double>()};
    return w;
}

// Rows [row0, row0 + n) of W times x.
Vec matvec(const Mat& W, const Vec& x, int64_t row0, int64_t n) {
    Vec out(static_cast<size_t>(n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < W.cols; ++j) out[i] += W.v[(row0 + i) * W.cols + j] * x[j];
    return out;
}
Vec matvec(const Mat& W, const Vec& x) { return matvec(W, x, 0, W.rows); }

Vec concat(Vec a, const Vec& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// RoPE of one head's vector at position p: pair i is (i, i + n/2) rotate-half, (2i, 2i+1) interleaved.
Vec rope_vec(const Vec& x, int64_t p, double base, RoPEPairing pairing) {
    const size_t n = x.size(), half = n / 2;
    Vec out(n);
    for (size_t i = 0; i < half; ++i) {
        const double a = double(p) * std::pow(base, -2.0 * double(i) / double(n));
        const size_t first = pairing == RoPEPairing::Interleaved ? 2 * i : i;
        const size_t second = pairing == RoPEPairing::Interleaved ? 2 * i + 1 : i + half;
        out[first] = x[first] * std::cos(a) - x[second] * std::sin(a);
        out[second] = x[second] * std::cos(a) + x[first] * std::sin(a);
    }
    return out;
}

Vec norm_ref(const Weights& w, const std::string& prefix, const Vec& x, NormType kind) {
    const double n = double(x.size());
    Vec out(x.size());
    const Mat& g = w(prefix + ".weight");
    if (kind == NormType::RMS) {
        double ms = 0;
        for (double v : x) ms += v * v / n;
        for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] / std::sqrt(ms + 1e-6) * g.v[i];
    } else {
        double mean = 0, var = 0;
        for (double v : x) mean += v / n;
        for (double v : x) var += (v - mean) * (v - mean) / n;
        for (size_t i = 0; i < x.size(); ++i)
            out[i] = (x[i] - mean) / std::sqrt(var + 1e-5) * g.v[i] + w(prefix + ".bias").v[i];
    }
    return out;
}

// The loss of DecoderLM written per sequence, per position, per head: token t's head h attends
// positions j <= t by an explicit softmax; no latte op is used.
double reference_loss(const DecoderLM& lm, const std::vector<std::vector<int64_t>>& ids,
                      const std::vector<std::vector<int64_t>>& targets) {
    const DecoderLMConfig& c = lm.lm_config();
    const Weights w = weights_of(lm);
    const int64_t D = c.width, H = c.heads, d = c.head_dim, G = c.kv_heads, dR = c.rope_dim;
    double total = 0;
    int64_t count = 0;
    for (size_t b = 0; b < ids.size(); ++b) {
        const int64_t L = static_cast<int64_t>(ids[b].size());
        std::vector<Vec> h(L);
        const Vec& table = w("embed.weight").v;
        for (int64_t t = 0; t < L; ++t) h[t] = Vec(table.begin() + ids[b][t] * D, table.begin() + (ids[b][t] + 1) * D);
        for (int64_t layer = 0; layer < c.layers; ++layer) {
            const std::string p = "layers." + std::to_string(layer) + ".";
            const std::string a = p + "attn.";
            // Per position: the queries, keys and values of every head.
            std::vector<std::vector<Vec>> Q(L), K(L), V(L);
            double scale = 1.0 / std::sqrt(double(d));
            for (int64_t t = 0; t < L; ++t) {
                const Vec x = norm_ref(w, p + "norm1", h[t], c.norm);
                for (int64_t hh = 0; hh < H; ++hh) {
                    Vec q, k, v;
                    const RoPEPairing pairing = c.rope_pairing;
                    if (c.attention == AttentionKind::MHA || c.attention == AttentionKind::GQA) {
                        const int64_t g = hh % G;  // the spec's rule
                        q = rope_vec(matvec(w(a + "W_Q.weight"), x, hh * d, d), t, c.rope_base, pairing);
                        k = rope_vec(matvec(w(a + "W_K.weight"), x, g * d, d), t, c.rope_base, pairing);
                        v = matvec(w(a + "W_V.weight"), x, g * d, d);
                    } else {
                        // DeepSeek-V2: c = RMSNorm(W_DKV x) with the latent norm; queries read
                        // c_Q = RMSNorm(W_DQ x) with q_rank.
                        Vec lat = matvec(w(a + "W_DKV.weight"), x);
                        if (c.latent_norm) lat = norm_ref(w, a + "kv_norm", lat, NormType::RMS);
                        const Vec q_in =
                            c.q_rank > 0 ? norm_ref(w, a + "q_norm", matvec(w(a + "W_DQ.weight"), x), NormType::RMS) : x;
                        q = matvec(w(a + "W_Q.weight"), q_in, hh * d, d);
                        k = matvec(w(a + "W_UK.weight"), lat, hh * d, d);
                        v = matvec(w(a + "W_UV.weight"), lat, hh * d, d);
                        if (c.attention == AttentionKind::MLARoPE) {
                            q = concat(q, rope_vec(matvec(w(a + "W_QR.weight"), q_in, hh * dR, dR), t, c.rope_base,
                                                   pairing));
                            k = concat(k, rope_vec(matvec(w(a + "W_KR.weight"), x), t, c.rope_base, pairing));
                            scale = 1.0 / std::sqrt(double(d + dR));
                        }
                    }
                    Q[t].push_back(q);
                    K[t].push_back(k);
                    V[t].push_back(v);
                }
            }
            for (int64_t t = 0; t < L; ++t) {
                Vec heads;
                for (int64_t hh = 0; hh < H; ++hh) {
                    Vec s(static_cast<size_t>(t + 1));
                    double top = -1e300, z = 0;
                    for (int64_t j = 0; j <= t; ++j) {
                        double dot = 0;
                        for (size_t i = 0; i < Q[t][hh].size(); ++i) dot += Q[t][hh][i] * K[j][hh][i];
                        s[j] = dot * scale;
                        top = std::max(top, s[j]);
                    }
                    for (int64_t j = 0; j <= t; ++j) z += std::exp(s[j] - top);
                    Vec o(static_cast<size_t>(d), 0.0);
                    for (int64_t j = 0; j <= t; ++j)
                        for (int64_t i = 0; i < d; ++i) o[i] += std::exp(s[j] - top) / z * V[j][hh][i];
                    heads = concat(heads, o);
                }
                const Vec att = matvec(w(a + "W_O.weight"), heads);
                for (int64_t i = 0; i < D; ++i) h[t][i] += att[i];
            }
            for (int64_t t = 0; t < L; ++t) {
                const Vec x = norm_ref(w, p + "norm2", h[t], c.norm);
                const Vec gate = matvec(w(p + "mlp.W_gate.weight"), x), up = matvec(w(p + "mlp.W_up.weight"), x);
                Vec s(gate.size());
                for (size_t i = 0; i < s.size(); ++i) s[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
                const Vec down = matvec(w(p + "mlp.W_down.weight"), s);
                for (int64_t i = 0; i < D; ++i) h[t][i] += down[i];
            }
        }
        for (int64_t t = 0; t < L; ++t) {
            const Vec logits = matvec(w("head.weight"), norm_ref(w, "norm", h[t], c.norm));
            double top = -1e300, z = 0;
            for (double v : logits) top = std::max(top, v);
            for (double v : logits) z += std::exp(v - top);
            total += top + std::log(z) - logits[targets[b][t]];
            ++count;
        }
    }
    return total / double(count);
}

DecoderLMConfig tiny_config(AttentionKind kind) {
    DecoderLMConfig c;
    c.vocab = 11;
    c.width = 8;
    c.layers = 2;
    c.attention = kind;
    c.heads = kind == AttentionKind::GQA ? 4 : 2;
    c.kv_heads = kind == AttentionKind::GQA ? 2 : 0;
    c.rank = 3;
    c.rope_dim = 2;
    c.mlp_hidden = 12;
    c.dtype = DType::Float64;
    return c;
}

const std::vector<std::vector<int64_t>> kIds = {{3, 1, 4, 1, 5, 9}, {2, 6, 5, 3, 5, 8}};
const std::vector<std::vector<int64_t>> kTargets = {{1, 4, 1, 5, 9, 2}, {6, 5, 3, 5, 8, 9}};

Tensor to_ids(const std::vector<std::vector<int64_t>>& rows) {
    std::vector<double> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return ids_tensor(flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}

const std::vector<AttentionKind> kKinds = {AttentionKind::MHA, AttentionKind::GQA, AttentionKind::MLA,
                                           AttentionKind::MLARoPE};

// Each kind with its defaults, then the options: the latent kinds without the latent norm (the
// spec's MLA) and with query compression, the rotary kinds with interleaved pairs.
std::vector<DecoderLMConfig> variants() {
    std::vector<DecoderLMConfig> out;
    for (AttentionKind kind : kKinds) {
        out.push_back(tiny_config(kind));
        const bool latent = kind == AttentionKind::MLA || kind == AttentionKind::MLARoPE;
        if (latent) {
            out.push_back(tiny_config(kind));
            out.back().latent_norm = false;
            out.push_back(tiny_config(kind));
            out.back().q_rank = 5;
        }
        if (kind != AttentionKind::MLA) {
            out.push_back(tiny_config(kind));
            out.back().rope_pairing = RoPEPairing::Interleaved;
        }
    }
    return out;
}

std::string describe(const DecoderLMConfig& c) {
    return attention_kind_name(c.attention) + " latent_norm=" + (c.latent_norm ? "on" : "off") +
           " q_rank=" + std::to_string(c.q_rank) + " pairing=" + rope_pairing_name(c.rope_pairing);
}

}  // namespace

TEST_CASE("DecoderLM loss equals a per-token loop reference in float64 for mha, gqa, mla and mla_rope",
          "[nn][lm]") {
    for (const DecoderLMConfig& variant : variants())
        for (NormType norm : {NormType::RMS, NormType::Layer}) {
            CAPTURE(describe(variant), norm == NormType::RMS);
            DecoderLMConfig c = variant;
            c.norm = norm;
            Generator gen(7);
            DecoderLM lm(c, gen);
            const Tensor logits = lm(to_ids(kIds));
            REQUIRE(logits.shape() == Shape{2, 6, 11});
            const double got = lm.loss(to_ids(kIds), to_ids(kTargets)).item();
            const double want = reference_loss(lm, kIds, kTargets);
            REQUIRE(std::abs(got - want) <= 1e-12 * std::abs(want));
        }
}

TEST_CASE("a causal DecoderLM's logits at a position do not depend on later tokens", "[nn][lm]") {
    for (AttentionKind kind : kKinds) {
        CAPTURE(attention_kind_name(kind));
        Generator gen(8);
        DecoderLM lm(tiny_config(kind), gen);
        auto other = kIds;
        other[0][4] = 7;
        other[1][5] = 0;
        const Tensor a = lm(to_ids(kIds)), b = lm(to_ids(other));
        REQUIRE(relative_error(narrow(a, 1, 0, 4), narrow(b, 1, 0, 4)) == 0.0);
        REQUIRE(relative_error(narrow(a, 1, 4, 2), narrow(b, 1, 4, 2)) > 1e-6);
    }
}

TEST_CASE("gradcheck of a tiny DecoderLM in float64", "[nn][lm][gradcheck]") {
    const Tensor ids = ids_tensor({3, 1, 4, 1, 5, 2, 6, 5}, {2, 4}), targets = ids_tensor({1, 4, 1, 5, 6, 5, 3, 0}, {2, 4});
    for (const DecoderLMConfig& variant : variants()) {
        CAPTURE(describe(variant));
        DecoderLMConfig c = variant;
        c.layers = 1;
        c.vocab = 7;
        c.mlp_hidden = 6;
        Generator gen(9);
        DecoderLM lm(c, gen);
        const GradcheckResult result = gradcheck_module(lm, [&](DecoderLM& m) { return m.loss(ids, targets); });
        INFO(result.message);
        REQUIRE(result.ok);
    }
}

TEST_CASE("DecoderLM names its parameters like a PyTorch state_dict", "[nn][lm]") {
    Generator gen(1);
    DecoderLM lm(tiny_config(AttentionKind::MLARoPE), gen);
    std::vector<std::string> names;
    for (const auto& [name, _] : lm.named_parameters()) names.push_back(name);
    const std::vector<std::string> layer = {"norm1.weight",      "attn.W_Q.weight",  "attn.W_QR.weight",
                                            "attn.W_DKV.weight", "attn.W_KR.weight", "attn.W_UK.weight",
                                            "attn.W_UV.weight",  "attn.W_O.weight",  "attn.kv_norm.weight", "norm2.weight",
                                            "mlp.W_gate.weight", "mlp.W_up.weight",  "mlp.W_down.weight"};
    std::vector<std::string> want{"embed.weight"};
    for (int i = 0; i < 2; ++i)
        for (const auto& n : layer) want.push_back("layers." + std::to_string(i) + "." + n);
    want.push_back("norm.weight");
    want.push_back("head.weight");
    REQUIRE(names == want);
    const auto shapes = lm.named_parameters();
    REQUIRE(shapes[0].second.shape() == Shape{11, 8});
    REQUIRE(shapes[3].second.shape() == Shape{4, 8});   // W_QR (H*d_R, D)
    REQUIRE(shapes[5].second.shape() == Shape{2, 8});   // W_KR (d_R, D)
    REQUIRE(shapes.back().second.shape() == Shape{11, 8});
    REQUIRE(lm.config().at("attention") == "mla_rope");

    std::vector<std::string> modules;
    for (const auto& [name, _] : lm.named_modules()) modules.push_back(name);
    REQUIRE(modules[0] == "");
    REQUIRE(modules[1] == "embed");
    REQUIRE(modules[2] == "layers");
    REQUIRE(modules[3] == "layers.0");
    REQUIRE(modules[4] == "layers.0.norm1");
}

TEST_CASE("Embedding, RMSNorm, LayerNorm, MLP, Sequential and ModuleList", "[nn][lm]") {
    Generator gen(2);
    Embedding emb(50, 64, gen, DType::Float64);
    const std::vector<double> w = emb.weight().to_vector<double>();
    double mean = 0, var = 0;
    for (double v : w) mean += v / double(w.size());
    for (double v : w) var += (v - mean) * (v - mean) / double(w.size());
    REQUIRE(std::abs(mean) < 0.05);  // N(0, 1), like torch.nn.Embedding
    REQUIRE(std::abs(var - 1) < 0.05);
    REQUIRE(relative_error(emb(ids_tensor({4, 2}, {2})), stack({select(emb.weight(), 0, 4), select(emb.weight(), 0, 2)}, 0)) == 0.0);

    RMSNorm rms(4);
    LayerNorm ln(4);
    REQUIRE(rms.named_parameters().size() == 1);
    REQUIRE(ln.named_parameters()[1].first == "bias");
    const Tensor x = randn({3, 4}, gen);
    LATTE_REQUIRE_CLOSE(rms(x), rms_norm(x, Tensor(), 1e-6), 0, 0);
    LATTE_REQUIRE_CLOSE(ln(x), layer_norm(x, Tensor(), Tensor(), 1e-5), 0, 0);

    MLP mlp(4, 6, gen);
    LATTE_REQUIRE_CLOSE(mlp(x),
                        mlp.W_down->forward(mul(silu(mlp.W_gate->forward(x)), mlp.W_up->forward(x))), 0, 0);

    Sequential seq;
    auto l0 = seq.push_back(std::make_shared<Linear>(4, 5, true, gen));
    seq.push_back(std::make_shared<RMSNorm>(5));
    auto l2 = seq.push_back(std::make_shared<Linear>(5, 2, false, gen));
    std::vector<std::string> names;
    for (const auto& [name, _] : seq.named_parameters()) names.push_back(name);
    REQUIRE(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "2.weight"});
    LATTE_REQUIRE_CLOSE(seq(x), l2->forward(rms_norm(l0->forward(x), Tensor(), 1e-6)), 0, 0);

    ModuleList list;
    list.push_back(std::make_shared<MLP>(4, 3, gen));
    list.push_back(std::make_shared<LayerNorm>(4));
    REQUIRE(list.size() == 2);
    REQUIRE(list.named_parameters()[0].first == "0.W_gate.weight");
    REQUIRE(list.named_parameters().back().first == "1.bias");
    REQUIRE(list.at<LayerNorm>(1)->dim() == 4);
    REQUIRE_THROWS_WITH(list.at<MLP>(1), "ModuleList: module 1 is not of the requested type");
}

TEST_CASE("TransformerBlock is x + attn(norm1(x)) then + mlp(norm2(x))", "[nn][lm]") {
    Generator gen(3);
    auto attn = std::make_shared<MultiHeadAttention>(8, 8, 4, 4, 2, gen, DType::Float64);
    TransformerBlock block(8, attn, 16, gen, NormType::Layer, DType::Float64);
    const Tensor x = test::randn64({2, 5, 8}, 4, false);
    const Tensor h = block.norm1->forward(x);
    const Tensor a = add(x, attn->forward(h, h, true));
    LATTE_REQUIRE_CLOSE(block(x), add(a, block.mlp->forward(block.norm2->forward(a))), 0, 0);
    auto cross = std::make_shared<MultiHeadAttention>(8, 6, 4, 4, 2, gen);
    REQUIRE_THROWS_WITH(TransformerBlock(8, cross, 16, gen),
                        "TransformerBlock: the attention's widths (D_1=8, D_2=6) must both be D=8");
}

TEST_CASE("MHA and GQA with RoPE: off by default, rotated q and k when on, decoding matches", "[nn][lm][rope]") {
    const int64_t D = 8, H = 4, d = 2, B = 2, T = 7;
    const Tensor x = test::randn64({B, T, D}, 11, false);
    Generator g1(5), g2(5);
    MultiHeadAttention plain(D, D, d, d, H, g1, DType::Float64);
    MultiHeadAttention roped(D, D, d, d, H, g2, DType::Float64, RoPE{true});
    REQUIRE(!plain.rope().enabled);
    REQUIRE(plain.config().count("rope") == 0);  // unchanged when off
    REQUIRE(roped.config().at("rope") == "true");
    // The same weights; RoPE by hand on q and k.
    const Tensor q = rope_heads(plain.W_Q->forward(x), H, 0, 10000.0);
    const Tensor k = rope_heads(plain.W_K->forward(x), H, 0, 10000.0);
    const Tensor want = plain.W_O->forward(
        grouped_attention(q, k, plain.W_V->forward(x), H, H, true, 1.0 / std::sqrt(double(d))));
    LATTE_REQUIRE_CLOSE(roped(x, x, true), want, 1e-13, 1e-13);
    REQUIRE(relative_error(plain(x, x, true), want) > 1e-3);
    // make_attention round-trips the option.
    Generator g3(5);
    auto rebuilt = make_attention(roped.config(), g3, DType::Float64);
    LATTE_REQUIRE_CLOSE(rebuilt->forward(x, x, true), want, 1e-13, 1e-13);

    GroupedQueryAttention gqa(D, D, d, d, H, 2, g1, DType::Float64, RoPE{true, 500.0});
    for (Attention* module : {static_cast<Attention*>(&roped), static_cast<Attention*>(&gqa)}) {
        const Tensor full = module->forward(x, x, true);
        auto decoder = make_decoder(*module, B, T);
        std::vector<Tensor> parts{decoder->step(narrow(x, 1, 0, 3))};
        for (int64_t t = 3; t < T; ++t) parts.push_back(decoder->step(narrow(x, 1, t, 1)));
        REQUIRE(relative_error(cat(parts, 1), full) < 1e-12);
    }
    REQUIRE_THROWS_WITH(MultiHeadAttention(6, 6, 3, 3, 2, g1, DType::Float64, RoPE{true}),
                        "MultiHeadAttention: RoPE needs an even D_qk and a finite base > 0, got D_qk=3 base=10000");
}

TEST_CASE("param_groups: no weight decay for norms, biases and embeddings; AdamW steps each group's decay",
          "[nn][lm][optim]") {
    Generator gen(4);
    DecoderLM lm(tiny_config(AttentionKind::GQA), gen);
    auto groups = param_groups(lm, 0.1);
    REQUIRE(groups.size() == 2);
    REQUIRE(groups[0].weight_decay == 0.1);
    REQUIRE(groups[1].weight_decay == 0.0);
    REQUIRE(groups[1].names == std::vector<std::string>{"embed.weight", "layers.0.norm1.weight", "layers.0.norm2.weight",
                                                        "layers.1.norm1.weight", "layers.1.norm2.weight",
                                                        "norm.weight"});
    REQUIRE(groups[0].names.size() + groups[1].names.size() == lm.named_parameters().size());
    REQUIRE(groups[0].names.front() == "layers.0.attn.W_Q.weight");
    REQUIRE(groups[0].names.back() == "head.weight");
    Sequential with_bias;
    with_bias.push_back(std::make_shared<Linear>(3, 2, true, gen));
    const auto bias_groups = param_groups(with_bias, 0.5);
    REQUIRE(bias_groups[0].names == std::vector<std::string>{"0.weight"});
    REQUIRE(bias_groups[1].names == std::vector<std::string>{"0.bias"});

    // AdamW over groups equals two ungrouped AdamWs with the groups' decays, step for step.
    std::vector<Tensor> a = {test::randn64({3, 2}, 1), test::randn64({4}, 2)};
    std::vector<Tensor> b = {test::randn64({3, 2}, 1), test::randn64({4}, 2)};
    AdamW grouped({ParamGroup{{a[0]}, 0.3, {}}, ParamGroup{{a[1]}, 0.0, {}}}, 0.1);
    AdamW first({b[0]}, 0.1, {0.9, 0.999, 1e-8, 0.3}), second({b[1]}, 0.1, {0.9, 0.999, 1e-8, 0.0});
    REQUIRE(grouped.grouped());
    REQUIRE(grouped.weight_decay(0) == 0.3);
    REQUIRE(grouped.weight_decay(1) == 0.0);
    for (int step = 0; step < 3; ++step) {
        for (size_t i = 0; i < 2; ++i) {
            const Tensor g = test::randn64(a[i].shape(), 10 + step * 2 + i, false);
            a[i].set_grad(clone(g));
            b[i].set_grad(clone(g));
        }
        grouped.step();
        first.step();
        second.step();
    }
    REQUIRE(relative_error(a[0], b[0]) == 0.0);
    REQUIRE(relative_error(a[1], b[1]) == 0.0);

    // The state carries the per-parameter decays and restores them; an ungrouped state does not fit.
    const OptimizerState state = grouped.state_dict();
    REQUIRE(state.metadata.at("param_weight_decay") == "0.3,0");
    std::vector<Tensor> c = {test::randn64({3, 2}, 1), test::randn64({4}, 2)};
    AdamW restored({ParamGroup{{c[0], c[1]}, 0.01, {}}}, 0.1);
    restored.load_state_dict(state);
    REQUIRE(restored.weight_decay(0) == 0.3);
    REQUIRE(restored.weight_decay(1) == 0.0);
    REQUIRE(restored.state_dict().metadata == state.metadata);
    REQUIRE_THROWS_WITH(restored.load_state_dict(first.state_dict()),
                        Catch::Contains("the state is for 1 parameters"));
    AdamW plain(c, 0.1);
    REQUIRE_THROWS_WITH(plain.load_state_dict(state), "adamw load_state_dict: unexpected metadata entry 'param_weight_decay'");
    OptimizerState bad = state;
    bad.metadata["param_weight_decay"] = "0.3,-1";
    REQUIRE_THROWS_WITH(restored.load_state_dict(bad),
                        "adamw load_state_dict: param_weight_decay entry 1 '-1' is not a finite non-negative number");
    REQUIRE(restored.weight_decay(1) == 0.0);  // unchanged
}

TEST_CASE("DecoderLM metadata: the latent options and the RoPE pairing round-trip; older files read as trained",
          "[nn][lm]") {
    DecoderLMConfig c = tiny_config(AttentionKind::MLARoPE);
    c.q_rank = 5;
    c.rope_pairing = RoPEPairing::Interleaved;
    Generator gen(3);
    DecoderLM lm(c, gen);
    std::map<std::string, std::string> meta = lm.config();
    REQUIRE(meta.at("latent_norm") == "true");
    REQUIRE(meta.at("q_rank") == "5");
    REQUIRE(meta.at("rope_pairing") == "interleaved");
    DecoderLMConfig back = decoder_lm_config(meta, "test");
    REQUIRE(back.latent_norm);
    REQUIRE(back.q_rank == 5);
    REQUIRE(back.rope_pairing == RoPEPairing::Interleaved);
    int64_t count = 0;
    for (const auto& [_, p] : lm.named_parameters()) count += p.numel();
    REQUIRE(decoder_lm_parameter_count(back, "test") == count);
    // A file from before these entries: no latent norm, no query compression, rotate-half pairs.
    meta.erase("latent_norm");
    meta.erase("q_rank");
    meta.erase("rope_pairing");
    back = decoder_lm_config(meta, "test");
    REQUIRE(!back.latent_norm);
    REQUIRE(back.q_rank == 0);
    REQUIRE(back.rope_pairing == RoPEPairing::RotateHalf);
    meta["latent_norm"] = "maybe";
    REQUIRE_THROWS_WITH(decoder_lm_config(meta, "load: f"), Catch::Contains("latent_norm"));
    meta["latent_norm"] = "true";
    meta["attention"] = "mha";
    REQUIRE_THROWS_WITH(decoder_lm_config(meta, "load: f"),
                        "load: f: metadata latent_norm / q_rank are for mla and mla_rope, not mha");
}
