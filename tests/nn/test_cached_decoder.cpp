// nn::CachedDecoderLM: decoding a DecoderLM through its layers' caches gives, at every position,
// the full forward's logits (a prefill, then single steps), for each attention kind; bad input is
// refused with the caches left as they were.
#include <string>
#include <vector>

#include "core/factory.h"
#include "nn/cached_decoder.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"

using namespace latte;

namespace {

nn::DecoderLMConfig small_config(nn::AttentionKind kind) {
    nn::DecoderLMConfig c;
    c.vocab = 13;
    c.width = 16;
    c.layers = 2;
    c.heads = 4;
    c.attention = kind;
    c.kv_heads = kind == nn::AttentionKind::GQA ? 2 : 0;
    c.rank = 6;
    c.rope_dim = 4;
    c.dtype = DType::Float64;
    return c;
}

Tensor random_ids(int64_t B, int64_t L, int64_t vocab, Generator& gen) {
    std::vector<int64_t> v(static_cast<size_t>(B * L));
    for (auto& id : v) id = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(vocab));
    Tensor t = Tensor::empty({B, L}, TensorOptions{}.with_dtype(DType::Int64));
    std::copy(v.begin(), v.end(), t.data_ptr<int64_t>());
    return t;
}

}  // namespace

TEST_CASE("CachedDecoderLM: prefill then single steps give the full forward's logits at every position", "[decode][lm]") {
    for (auto kind : {nn::AttentionKind::MHA, nn::AttentionKind::GQA, nn::AttentionKind::MLA,
                      nn::AttentionKind::MLARoPE}) {
        DYNAMIC_SECTION(nn::attention_kind_name(kind)) {
            Generator gen(11);
            const nn::DecoderLM model(small_config(kind), gen);
            const int64_t B = 2, L = 9, prefill = 4;
            const Tensor ids = random_ids(B, L, model.lm_config().vocab, gen);
            const Tensor full = model.forward(ids);  // (B, L, V)

            nn::CachedDecoderLM decoder(model, B, L);
            const Tensor first = decoder.step(contiguous(narrow(ids, 1, 0, prefill)));
            LATTE_REQUIRE_CLOSE(first, narrow(full, 1, 0, prefill), 1e-10, 1e-10);
            for (int64_t t = prefill; t < L; ++t) {
                const Tensor logits = decoder.step(contiguous(narrow(ids, 1, t, 1)));
                REQUIRE(logits.shape() == Shape{B, 1, model.lm_config().vocab});
                INFO("position " << t);
                LATTE_REQUIRE_CLOSE(logits, narrow(full, 1, t, 1), 1e-10, 1e-10);
            }
            REQUIRE(decoder.length() == L);
            REQUIRE(decoder.cache_bytes() > 0);
        }
    }
}

TEST_CASE("CachedDecoderLM refuses a wrong dtype or shape, ids out of the vocabulary and steps past capacity", "[decode][lm]") {
    Generator gen(3);
    const nn::DecoderLM model(small_config(nn::AttentionKind::GQA), gen);
    nn::CachedDecoderLM decoder(model, 2, 4);
    const TensorOptions i64 = TensorOptions{}.with_dtype(DType::Int64);

    REQUIRE_THROWS_WITH(decoder.step(zeros({2, 3}, TensorOptions{}.with_dtype(DType::Float64))),
                        "CachedDecoderLM::step: expected ids (2, n >= 1) int64, got float64 [2,3]");
    REQUIRE_THROWS_WITH(decoder.step(zeros({3, 1}, i64)),
                        "CachedDecoderLM::step: expected ids (2, n >= 1) int64, got int64 [3,1]");
    Tensor bad = zeros({2, 2}, i64);
    bad.data_ptr<int64_t>()[3] = 13;
    REQUIRE_THROWS_WITH(decoder.step(bad), "CachedDecoderLM::step: ids must be in [0, 13), got 13");
    bad.data_ptr<int64_t>()[3] = -1;
    REQUIRE_THROWS_WITH(decoder.step(bad), "CachedDecoderLM::step: ids must be in [0, 13), got -1");
    REQUIRE(decoder.length() == 0);  // nothing refused was cached

    decoder.step(zeros({2, 3}, i64));
    REQUIRE_THROWS_WITH(decoder.step(zeros({2, 2}, i64)),
                        "CachedDecoderLM::step: 2 more positions do not fit: 3 of 4 are used");
    REQUIRE(decoder.length() == 3);
    REQUIRE(decoder.step(zeros({2, 1}, i64)).shape() == Shape{2, 1, 13});
    REQUIRE_THROWS_AS(decoder.step(zeros({2, 1}, i64)), Error);

    REQUIRE_THROWS_WITH(nn::CachedDecoderLM(model, 0, 4),
                        "CachedDecoderLM: batch and capacity must be at least 1, got batch=0 capacity=4");
}
