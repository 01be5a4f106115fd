// Issue 11 item 6: a RoPE-free GQA DecoderLM converts to an MLA DecoderLM with the same logits
// (to_mla on a whole model), and DecoderLM weight files load back (load_decoder_lm).
#include <filesystem>
#include <map>
#include <string>

#include "core/autograd.h"
#include "nn/conversion.h"
#include "nn/decoder_lm.h"
#include "nn/mla.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

DecoderLMConfig gqa_config(int64_t G, bool rope) {
    DecoderLMConfig c;
    c.vocab = 13;
    c.width = 24;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = G;
    c.attention = AttentionKind::GQA;
    c.rope = rope;
    c.dtype = DType::Float64;
    return c;
}

// Every parameter redrawn from N(0, 0.3^2) (norm weights included, which start at 1), so copying
// the wrong tensor anywhere changes the logits.
void randomize(const Module& m, uint64_t seed) {
    Generator gen(seed);
    NoGradGuard no_grad;
    for (const auto& [_, p] : m.named_parameters()) copy_(p, mul(randn(p.shape(), gen, test::f64()), 0.3));
}

Tensor random_ids(int64_t B, int64_t L, int64_t vocab, uint64_t seed) {
    Generator gen(seed);
    std::vector<double> v;
    for (int64_t i = 0; i < B * L; ++i) v.push_back(double(gen.next_u64() % uint64_t(vocab)));
    return from_vector(v, {B, L}, TensorOptions{}.with_dtype(DType::Int64));
}

}  // namespace

TEST_CASE("to_mla on a RoPE-free GQA DecoderLM gives an MLA DecoderLM with the same logits", "[nn][lm][conversion]") {
    for (int64_t G : {1, 2}) {
        CAPTURE(G);
        Generator gen(3);
        DecoderLM gqa(gqa_config(G, false), gen);
        randomize(gqa, 10 + uint64_t(G));
        auto mla = to_mla(gqa);
        const DecoderLMConfig& mc = mla->lm_config();
        REQUIRE(mc.attention == AttentionKind::MLA);
        // r = min(2*G*d, D) with d = 6: the same KV cache as the GQA's 2*G*d numbers per position.
        REQUIRE(mc.rank == std::min<int64_t>(2 * G * 6, 24));
        REQUIRE(mla->layer(0).attn->kv_cache_per_position() == gqa.layer(0).attn->kv_cache_per_position());
        REQUIRE(dynamic_cast<const MultiHeadLatentAttention*>(mla->layer(1).attn.get()) != nullptr);
        // Everything outside attention is copied, bit for bit.
        std::map<std::string, Tensor> source;
        for (const auto& [name, p] : gqa.named_parameters()) source.emplace(name, p);
        int64_t copied = 0;
        for (const auto& [name, p] : mla->named_parameters()) {
            if (name.find(".attn.") != std::string::npos) continue;
            CAPTURE(name);
            REQUIRE(p.to_vector() == source.at(name).to_vector());
            ++copied;
        }
        REQUIRE(copied == 2 + 2 * (2 + 3) + 1);  // embed, head; per layer 2 norms + 3 MLP; final norm
        NoGradGuard no_grad;
        const Tensor ids = random_ids(3, 9, 13, 7);
        const Tensor expected = gqa.forward(ids), actual = mla->forward(ids);
        REQUIRE(relative_error(actual, expected) < 1e-12);
        REQUIRE(relative_error(expected, zeros_like(expected)) > 0.5);  // the logits are not trivially equal
    }
}

TEST_CASE("to_mla on a float32 DecoderLM keeps its dtype and a smaller rank truncates", "[nn][lm][conversion]") {
    Generator gen(4);
    DecoderLMConfig c = gqa_config(2, false);
    c.dtype = DType::Float32;
    DecoderLM gqa(c, gen);
    auto mla = to_mla(gqa);
    REQUIRE(mla->parameters().front().dtype() == DType::Float32);
    NoGradGuard no_grad;
    const Tensor ids = random_ids(2, 7, 13, 8);
    REQUIRE(relative_error(mla->forward(ids), gqa.forward(ids)) < 1e-5);
    // A rank below 2*G*d keeps the top singular directions: a different model, with its own r.
    auto small = to_mla(gqa, 4);
    REQUIRE(small->lm_config().rank == 4);
    REQUIRE(small->layer(0).attn->kv_cache_per_position() == 4);
}

TEST_CASE("to_mla refuses a GQA DecoderLM with RoPE and other attention kinds", "[nn][lm][conversion]") {
    Generator gen(5);
    DecoderLM roped(gqa_config(2, true), gen);
    REQUIRE_THROWS_WITH(to_mla(roped), Catch::Contains("to_mla: this gqa DecoderLM (D=24 H=4 G=2) has RoPE on q and k"));
    DecoderLMConfig c = gqa_config(2, false);
    c.attention = AttentionKind::MHA;
    DecoderLM mha(c, gen);
    REQUIRE_THROWS_WITH(to_mla(mha), "to_mla: needs a DecoderLM with attention gqa, got mha");
    DecoderLM gqa(gqa_config(1, false), gen);
    REQUIRE_THROWS_WITH(to_mla(gqa, 13), "to_mla: rank 13 must be in [1, min(2*G*d, D) = 12]");
}

TEST_CASE("a DecoderLM weight file loads back with its config and RoPE switch", "[nn][lm][io]") {
    const std::string path = test::temp_path("decoder_lm.safetensors");
    Generator gen(6);
    for (AttentionKind kind : {AttentionKind::GQA, AttentionKind::MLA, AttentionKind::MLARoPE}) {
        DecoderLMConfig c = gqa_config(2, false);
        c.attention = kind;
        c.rank = 5;
        c.rope_dim = 4;
        DecoderLM lm(c, gen);
        randomize(lm, 20);
        save(lm, path);
        auto back = load_decoder_lm(path, DType::Float64);
        REQUIRE(back->config() == lm.config());
        // gqa was built without RoPE; lm_config().rope says whether a model has rotary dims at all.
        REQUIRE(back->lm_config().rope == (kind == AttentionKind::MLARoPE));
        REQUIRE(lm.lm_config().rope == back->lm_config().rope);
        NoGradGuard no_grad;
        const Tensor ids = random_ids(2, 5, 13, 9);
        REQUIRE(relative_error(back->forward(ids), lm.forward(ids)) == 0);
    }
    std::filesystem::remove(path);
}

TEST_CASE("load_decoder_lm refuses metadata that does not match the file's tensors", "[nn][lm][io]") {
    const std::string path = test::temp_path("decoder_lm_bad.safetensors");
    Generator gen(7);
    DecoderLM lm(gqa_config(2, false), gen);
    std::map<std::string, std::string> meta = lm.config();
    meta["layers"] = std::to_string(100000);  // the file holds 2 layers' tensors: refused before allocating 100000
    save_safetensors(path, lm.named_parameters(), meta);
    REQUIRE_THROWS_WITH(load_decoder_lm(path), Catch::Contains("its metadata describes a DecoderLM of"));
    meta = lm.config();
    meta["module"] = std::string("gqa");
    save_safetensors(path, lm.named_parameters(), meta);
    REQUIRE_THROWS_WITH(load_decoder_lm(path), "load: " + path + ": metadata module='gqa' is not decoder_lm");
    meta = lm.config();
    meta["G"] = std::to_string(3);
    save_safetensors(path, lm.named_parameters(), meta);
    REQUIRE_THROWS_WITH(load_decoder_lm(path), "load: " + path + ": metadata H=4 is not a multiple of G=3");
    meta = lm.config();
    meta["rope"] = std::string("maybe");
    save_safetensors(path, lm.named_parameters(), meta);
    REQUIRE_THROWS_WITH(load_decoder_lm(path), Catch::Contains("'rope' is 'maybe', not true or false"));
    std::filesystem::remove(path);
}
