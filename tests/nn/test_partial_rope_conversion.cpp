// Issue 19 item 3: a GQA language model with RoPE (G = 1) converts to MLA + RoPE by partial RoPE
// (nn::to_mla_rope): the kept rotary pairs carry over exactly, the rest become position-free and
// are compressed by a truncated SVD.
#include <cmath>

#include "core/autograd.h"
#include "nn/conversion.h"
#include "nn/decode.h"
#include "nn/decoder_lm.h"
#include "nn/mla_rope.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

namespace {

DecoderLMConfig gqa_rope(RoPEPairing pairing, double base) {
    DecoderLMConfig c;
    c.vocab = 13;
    c.width = 16;
    c.layers = 2;
    c.attention = AttentionKind::GQA;
    c.heads = 2;
    c.kv_heads = 1;
    c.mlp_hidden = 20;
    c.rope_base = base;
    c.rope_pairing = pairing;
    c.dtype = DType::Float64;
    return c;
}

Tensor ids() {
    return from_vector(std::vector<double>{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4}, {2, 10},
                       TensorOptions{}.with_dtype(DType::Int64));
}

}  // namespace

TEST_CASE("partial RoPE with every pair kept (rope_dim = d) converts a G=1 GQA exactly, in both pairings",
          "[nn][lm][conversion][partial_rope]") {
    for (RoPEPairing pairing : {RoPEPairing::RotateHalf, RoPEPairing::Interleaved}) {
        CAPTURE(rope_pairing_name(pairing));
        Generator gen(1);
        DecoderLM gqa(gqa_rope(pairing, 10000.0), gen);
        auto mla = to_mla_rope(gqa, 0, 8);  // d = 8: every pair keeps its rotation
        const DecoderLMConfig& c = mla->lm_config();
        REQUIRE(c.attention == AttentionKind::MLARoPE);
        REQUIRE(c.rope_dim == 8);
        REQUIRE(c.rank == 16);
        REQUIRE(!c.latent_norm);
        REQUIRE(c.rope_pairing == pairing);
        REQUIRE(c.rope_base == Approx(10000.0));  // base^(d_R/d) with d_R = d
        REQUIRE(relative_error(mla->forward(ids()), gqa.forward(ids())) < 1e-12);
    }
}

TEST_CASE("partial RoPE keeps the fastest pairs exactly and makes the rest position-free",
          "[nn][lm][conversion][partial_rope]") {
    // With base 1e120 only pair 0 turns (pair i >= 1 turns by position * 1e-30i): keeping pair 0
    // (rope_dim 2) loses no rotation, so at full rank the conversion is exact. The new base is
    // base^(2/8) = 1e30, which turns the kept pair at the same rate.
    for (RoPEPairing pairing : {RoPEPairing::RotateHalf, RoPEPairing::Interleaved}) {
        CAPTURE(rope_pairing_name(pairing));
        Generator gen(2);
        DecoderLM gqa(gqa_rope(pairing, 1e120), gen);
        auto mla = to_mla_rope(gqa, 0, 2);
        REQUIRE(mla->lm_config().rope_base == Approx(1e30).epsilon(1e-12));
        REQUIRE(relative_error(mla->forward(ids()), gqa.forward(ids())) < 1e-12);
        // A truncated rank approximates it; decoding the converted model with its cache is exact.
        auto small = to_mla_rope(gqa, 4, 2);
        const double err = relative_error(small->forward(ids()), gqa.forward(ids()));
        REQUIRE(err > 1e-6);
        REQUIRE(std::isfinite(err));
        REQUIRE(small->layer(0).attn->kv_cache_per_position() == 4 + 2);
    }
    // With an ordinary base the other pairs do lose their rotation: the models differ until fine-tuned.
    Generator gen(3);
    DecoderLM gqa(gqa_rope(RoPEPairing::RotateHalf, 10000.0), gen);
    REQUIRE(relative_error(to_mla_rope(gqa, 0, 4)->forward(ids()), gqa.forward(ids())) > 1e-6);
}

TEST_CASE("to_mla_rope refuses what it cannot convert", "[nn][lm][conversion][partial_rope][errors]") {
    Generator gen(4);
    DecoderLM gqa(gqa_rope(RoPEPairing::RotateHalf, 10000.0), gen);
    REQUIRE_THROWS_WITH(to_mla_rope(gqa, 0, 3), "to_mla_rope: rope_dim must be even and in [2, d = 8], got 3");
    REQUIRE_THROWS_WITH(to_mla_rope(gqa, 0, 10), "to_mla_rope: rope_dim must be even and in [2, d = 8], got 10");
    REQUIRE_THROWS_WITH(to_mla_rope(gqa, 17, 2), "to_mla_rope: rank 17 must be in [1, min(2*d, D) = 16]");
    DecoderLMConfig two = gqa_rope(RoPEPairing::RotateHalf, 10000.0);
    two.kv_heads = 2;
    DecoderLM g2(two, gen);
    REQUIRE_THROWS_WITH(to_mla_rope(g2, 0, 2), Catch::Contains("to_mla_rope: this gqa DecoderLM has G=2 K/V heads"));
    DecoderLMConfig nope = gqa_rope(RoPEPairing::RotateHalf, 10000.0);
    nope.rope = false;
    DecoderLM g3(nope, gen);
    REQUIRE_THROWS_WITH(to_mla_rope(g3, 0, 2), Catch::Contains("got gqa without RoPE"));
}
