// Part 14: decoding one token at a time with a K/V cache (MHA, GQA) or a latent cache (MLA).
#include "core/autograd.h"
#include "nn/decode.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::nn;

TEST_CASE("decoding token by token equals the full causal forward at every position", "[nn][decode]") {
    const int64_t D = 12, H = 4, d = 3, B = 2, T = 9;
    Generator gen(1);
    MultiHeadAttention mha(D, D, d, d, H, gen, DType::Float64);
    GroupedQueryAttention gqa(D, D, d, d, H, 2, gen, DType::Float64);
    MultiHeadLatentAttention mla(D, H, d, 5, gen, DType::Float64);
    const std::vector<std::pair<const char*, Attention*>> modules = {{"mha", &mha}, {"gqa", &gqa}, {"mla", &mla}};
    Tensor x = test::randn64({B, T, D}, 2, false);
    for (const auto& [name, module] : modules) {
        CAPTURE(name);
        const Tensor full = module->forward(x, x, true);  // (B, T, D), vanilla path
        auto decoder = make_decoder(*module, B, T);
        REQUIRE(decoder->cache_numbers_per_position() == module->kv_cache_per_position());
        std::vector<Tensor> outputs;
        for (int64_t t = 0; t < T; ++t) {
            outputs.push_back(decoder->step(narrow(x, 1, t, 1)));
            REQUIRE(decoder->length() == t + 1);
            REQUIRE(decoder->cache_bytes() == B * (t + 1) * module->kv_cache_per_position() * 8);
        }
        REQUIRE(relative_error(cat(outputs, 1), full) < 1e-12);
        // A prefill of 4 tokens, then single steps, gives the same outputs.
        auto prefilled = make_decoder(*module, B, T);
        std::vector<Tensor> parts{prefilled->step(narrow(x, 1, 0, 4))};
        for (int64_t t = 4; t < T; ++t) parts.push_back(prefilled->step(narrow(x, 1, t, 1)));
        REQUIRE(relative_error(cat(parts, 1), full) < 1e-12);
        // Caching a prompt without its outputs leaves the later outputs unchanged.
        auto appended = make_decoder(*module, B, T);
        appended->append(narrow(x, 1, 0, 6));
        REQUIRE(appended->length() == 6);
        REQUIRE(relative_error(appended->step(narrow(x, 1, 6, 3)), narrow(full, 1, 6, 3)) < 1e-12);
        REQUIRE_THROWS_WITH(prefilled->step(narrow(x, 1, 0, 1)),
                            "PositionCache::append: 1 more positions do not fit: 9 of 9 are used");
    }
}

TEST_CASE("the MLA latent cache holds r numbers per position, MHA's K/V cache 2*D", "[nn][decode]") {
    Generator gen(3);
    MultiHeadAttention mha(64, 64, 16, 16, 4, gen);
    MultiHeadLatentAttention mla(64, 4, 16, 24, gen);
    auto kv = make_decoder(mha, 3, 10), latent = make_decoder(mla, 3, 10);
    Tensor x = randn({3, 10, 64}, gen);
    kv->step(x);
    latent->step(x);
    REQUIRE(kv->cache_numbers_per_position() == 2 * 64);
    REQUIRE(latent->cache_numbers_per_position() == 24);
    REQUIRE(kv->cache_bytes() == 3 * 10 * 128 * 4);
    REQUIRE(latent->cache_bytes() == 3 * 10 * 24 * 4);
}

TEST_CASE("a decode step reads the cache in place instead of copying it", "[nn][decode][memory]") {
    Generator gen(5);
    const int64_t B = 2, T = 2048, D = 32;
    MultiHeadAttention mha(D, D, 8, 8, 4, gen);
    MultiHeadLatentAttention mla(D, 2, 16, 64, gen);  // a latent wider than the H scores per key
    Tensor prompt = randn({B, T - 1, D}, gen), token = randn({B, 1, D}, gen);
    for (Attention* module : {static_cast<Attention*>(&mha), static_cast<Attention*>(&mla)}) {
        auto decoder = make_decoder(*module, B, T);
        for (int64_t start = 0; start < T - 1; start += 256)  // prefill in chunks
            decoder->step(narrow(prompt, 1, start, std::min<int64_t>(256, T - 1 - start)));
        const int64_t cache = decoder->cache_bytes();
        const int64_t base = memory_stats().live_bytes;
        reset_peak_memory();
        decoder->step(token);
        const int64_t step_peak = memory_stats().peak_bytes - base;
        // One step's own tensors: scores (H per token over T keys, a few times) and projections;
        // a copy of the cache would add `cache` bytes on top.
        INFO("cache " << cache << " bytes, step peak " << step_peak);
        REQUIRE(step_peak < cache / 4);
    }
}

TEST_CASE("decoders reject mismatched tokens and modules", "[nn][decode][errors]") {
    Generator gen(4);
    MultiHeadLatentAttention mla(8, 2, 4, 3, gen);
    auto decoder = make_decoder(mla, 2, 4);
    REQUIRE_THROWS_WITH(decoder->step(zeros({3, 1, 8})),
                        "decode (latent cache): expected new tokens x (2, n, 8), got [3,1,8]");
    MultiHeadAttention cross(8, 6, 4, 4, 2, gen);
    REQUIRE_THROWS_WITH(make_decoder(cross, 2, 4), "make_decoder: self-attention decoding needs D_1 = D_2, got D_1=8 D_2=6");
    REQUIRE_THROWS_WITH(PositionCache(0, 4, 2, {}), "PositionCache: sizes must be positive, got batch=0 capacity=4 width=2");
}
