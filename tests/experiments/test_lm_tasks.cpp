// The synthetic LM tasks of experiments/lm_tasks.h: each answer re-derived from its prompt,
// determinism per seed, the answer accuracy, and cached greedy generation against recomputation.
#include <map>
#include <set>
#include <tuple>

#include "core/factory.h"
#include "experiments/lm_tasks.h"
#include "nn/decoder_lm.h"
#include "tests/support/catch_helpers.h"

using namespace latte;
using namespace latte::experiments;

namespace {

struct Rows {
    std::vector<int64_t> ids, targets;
    int64_t B, L;
    int64_t id(int64_t b, int64_t i) const { return ids[size_t(b * L + i)]; }
    int64_t target(int64_t b, int64_t i) const { return targets[size_t(b * L + i)]; }
};

Rows draw_rows(const LMTaskSpec& spec, uint64_t seed) {
    Generator gen(seed);
    const LMBatch b = make_lm_batch(spec, gen);
    REQUIRE(b.ids.shape() == Shape{spec.batch, spec.length});
    REQUIRE(b.targets.shape() == Shape{spec.batch, spec.length});
    REQUIRE(b.ids.dtype() == DType::Int64);
    REQUIRE(b.targets.dtype() == DType::Int64);
    return {b.ids.to_vector<int64_t>(), b.targets.to_vector<int64_t>(), spec.batch, spec.length};
}

Tensor int64s(const std::vector<int64_t>& v, const Shape& shape) {
    Tensor t = Tensor::empty(shape, TensorOptions{}.with_dtype(DType::Int64));
    std::copy(v.begin(), v.end(), t.data_ptr<int64_t>());
    return t;
}

}  // namespace

TEST_CASE("lm task recall: the last target is the value of the queried key", "[lm]") {
    for (int64_t L : {17, 8, 3}) {
        const LMTaskSpec spec{LMTask::Recall, 32, L, 16};
        const Rows r = draw_rows(spec, 3);
        const int64_t K = (L - 1) / 2, nk = 15, o = L - (2 * K + 1);
        for (int64_t b = 0; b < r.B; ++b) {
            std::set<int64_t> keys;
            for (int64_t i = 0; i < o; ++i) REQUIRE(r.id(b, i) == 0);
            int64_t answer = -1;
            for (int64_t i = 0; i < K; ++i) {
                const int64_t k = r.id(b, o + 2 * i), v = r.id(b, o + 2 * i + 1);
                REQUIRE((k >= 1 && k <= nk));
                REQUIRE((v > nk && v < 32));
                keys.insert(k);
                if (k == r.id(b, L - 1)) answer = v;
            }
            REQUIRE(int64_t(keys.size()) == K);  // distinct keys: the answer is determined
            REQUIRE(answer >= 0);
            for (int64_t i = 0; i < L; ++i) REQUIRE(r.target(b, i) == (i == L - 1 ? answer : kLMIgnore));
        }
    }
}

TEST_CASE("lm task copy: targets are the repeated tokens, one step ahead", "[lm]") {
    for (int64_t L : {17, 10}) {
        const LMTaskSpec spec{LMTask::Copy, 12, L, 8};
        const Rows r = draw_rows(spec, 4);
        const int64_t n = (L - 1) / 2, o = L - (2 * n + 1);
        REQUIRE(lm_prompt_length(spec) == o + n + 1);
        REQUIRE(lm_answer_length(spec) == n);
        for (int64_t b = 0; b < r.B; ++b) {
            REQUIRE(r.id(b, o + n) == 0);
            int64_t answers = 0;
            for (int64_t i = 0; i < n; ++i) {
                REQUIRE((r.id(b, o + i) >= 1 && r.id(b, o + i) < 12));
                REQUIRE(r.id(b, o + n + 1 + i) == r.id(b, o + i));
            }
            for (int64_t j = 0; j < L; ++j) {
                if (r.target(b, j) == kLMIgnore) continue;
                ++answers;
                REQUIRE(j >= o + n);
                REQUIRE(r.target(b, j) == r.id(b, j + 1));      // predicted one step ahead
                REQUIRE(r.target(b, j) == r.id(b, j - n));      // determined by the first copy
            }
            REQUIRE(answers == n);
        }
    }
}

TEST_CASE("lm task modadd: the target is a + b mod p at '='", "[lm]") {
    const LMTaskSpec spec{LMTask::ModAdd, 16, 6, 32};
    const int64_t p = 13;
    const Rows r = draw_rows(spec, 5);
    for (int64_t b = 0; b < r.B; ++b) {
        REQUIRE(r.id(b, 0) == p + 2);
        REQUIRE(r.id(b, 1) == p + 2);
        const int64_t a = r.id(b, 2), c = r.id(b, 4);
        REQUIRE((a >= 0 && a < p && c >= 0 && c < p));
        REQUIRE(r.id(b, 3) == p);
        REQUIRE(r.id(b, 5) == p + 1);
        for (int64_t i = 0; i < 5; ++i) REQUIRE(r.target(b, i) == kLMIgnore);
        REQUIRE(r.target(b, 5) == (a + c) % p);
    }
}

TEST_CASE("lm tasks are deterministic for a seed", "[lm]") {
    for (LMTask task : {LMTask::Recall, LMTask::Copy, LMTask::ModAdd}) {
        const LMTaskSpec spec{task, 32, 17, 8};
        const Rows a = draw_rows(spec, 9), b = draw_rows(spec, 9), c = draw_rows(spec, 10);
        REQUIRE(a.ids == b.ids);
        REQUIRE(a.targets == b.targets);
        REQUIRE(a.ids != c.ids);
    }
}

TEST_CASE("lm tasks refuse sizes that do not fit", "[lm]") {
    REQUIRE_THROWS_WITH(check_lm_task({LMTask::Recall, 8, 17, 1}, "latte lm"),
                        "latte lm: --vocab 8 is too small for recall with --L 17 (8 distinct keys plus values need "
                        "a vocab of at least 17)");
    REQUIRE_THROWS_WITH(check_lm_task({LMTask::ModAdd, 32, 3, 1}, "latte lm"),
                        "latte lm: --L 3 is too short for modadd (\"a + b =\" needs 4)");
    REQUIRE_THROWS_WITH(parse_lm_task("sort", "latte lm"), "latte lm: --task must be recall, copy, modadd or mqar, got 'sort'");
    REQUIRE_NOTHROW(check_lm_task({LMTask::Recall, 17, 17, 1}));
}

TEST_CASE("lm accuracy counts argmax hits on answer positions only", "[lm]") {
    // B=2, L=3, V=3. Answers: (0,1) target 2, hit; (0,2) target 0, miss; (1,0) target 1, a tie
    // between 1 and 2 resolved to the first, hit. Ignored positions are wrong on purpose.
    const std::vector<float> v{0, 9, 0,  0, 1, 5,  0, 3, 1,
                               9, 4, 4,  5, 0, 0,  7, 0, 1};
    const Tensor logits = from_vector(v, {2, 3, 3});
    const Tensor targets = int64s({kLMIgnore, 2, 0, 1, kLMIgnore, kLMIgnore}, {2, 3});
    const LMAccuracy acc = lm_accuracy(logits, targets);
    REQUIRE(acc.total == 3);
    REQUIRE(acc.correct == 1);
    const Tensor tie = from_vector(std::vector<float>{0, 4, 4}, {1, 1, 3});
    REQUIRE(lm_accuracy(tie, int64s({1}, {1, 1})).correct == 1);
    REQUIRE(lm_accuracy(tie, int64s({2}, {1, 1})).correct == 0);
    REQUIRE(lm_accuracy(tie, int64s({kLMIgnore}, {1, 1})).value() == 0.0);
}

TEST_CASE("lm greedy generation with the cache equals full recomputation", "[lm]") {
    for (const char* kind : {"mha", "gqa", "mla", "mla_rope"}) {
        CAPTURE(kind);
        nn::DecoderLMConfig c;
        c.vocab = 13;
        c.width = 16;
        c.layers = 2;
        c.heads = 2;
        c.attention = nn::parse_attention_kind(kind);
        c.kv_heads = 1;
        c.rank = 8;
        c.rope_dim = 4;
        Generator gen(21);
        nn::DecoderLM model(c, gen);
        Generator data(22);
        const LMBatch b = make_lm_batch({LMTask::Copy, 13, 7, 3}, data);
        const Tensor cached = lm_generate(model, b.ids, 6, true);
        const Tensor full = lm_generate(model, b.ids, 6, false);
        REQUIRE(cached.shape() == Shape{3, 6});
        REQUIRE(cached.to_vector<int64_t>() == full.to_vector<int64_t>());
    }
}

TEST_CASE("lm task mqar: every query's target is the value its key was paired with", "[lm]") {
    for (auto [N, Q, L] : {std::tuple<int64_t, int64_t, int64_t>{8, 8, 32}, {8, 3, 22}, {16, 4, 50}, {1, 1, 4}}) {
        CAPTURE(N, Q, L);
        LMTaskSpec spec{LMTask::MQAR, 40, L, 12};
        spec.pairs = N;
        spec.queries = Q;
        if (L == 2 * (N + Q)) REQUIRE(lm_default_length(spec) == L);
        REQUIRE(lm_answers_per_sequence(spec) == Q);
        REQUIRE(lm_prompt_length(spec) == L - 2 * Q + 1);
        const Rows r = draw_rows(spec, 11);
        const int64_t nk = 19, gap = L - 2 * (N + Q), o = 0, queries_at = 2 * N + gap;
        std::set<int64_t> queried_pairs_seen;
        for (int64_t b = 0; b < r.B; ++b) {
            for (int64_t i = 2 * N; i < queries_at; ++i) REQUIRE(r.id(b, i) == 0);  // the filler
            std::map<int64_t, int64_t> value_of;
            for (int64_t i = 0; i < N; ++i) {
                const int64_t k = r.id(b, o + 2 * i), v = r.id(b, o + 2 * i + 1);
                REQUIRE((k >= 1 && k <= nk));
                REQUIRE((v > nk && v < 40));
                value_of[k] = v;
            }
            REQUIRE(int64_t(value_of.size()) == N);  // distinct keys
            std::set<int64_t> queried;
            int64_t answers = 0;
            for (int64_t i = 0; i < L; ++i) {
                const bool query = i >= queries_at && (i - queries_at) % 2 == 0;
                if (!query) {
                    REQUIRE(r.target(b, i) == kLMIgnore);
                    continue;
                }
                const int64_t k = r.id(b, i);
                REQUIRE(value_of.count(k) == 1);
                REQUIRE(r.target(b, i) == value_of[k]);
                REQUIRE(r.id(b, i + 1) == value_of[k]);  // the answer follows as the next input
                queried.insert(k);
                ++answers;
            }
            REQUIRE(answers == Q);
            REQUIRE(int64_t(queried.size()) == Q);  // Q distinct keys
            queried_pairs_seen.insert(queried.begin(), queried.end());
        }
        if (N > 1 && Q < N) REQUIRE(int64_t(queried_pairs_seen.size()) > Q);  // not always the same keys
    }
    LMTaskSpec bad{LMTask::MQAR, 32, 40, 1};
    bad.pairs = 16;
    bad.queries = 4;
    REQUIRE_THROWS_WITH(check_lm_task(bad, "latte lm"), "latte lm: --vocab 32 is too small for mqar with --pairs 16 (16 "
                                                        "distinct keys plus values need a vocab of at least 33)");
    bad.vocab = 64;
    bad.length = 39;
    REQUIRE_THROWS_WITH(check_lm_task(bad, "latte lm"),
                        "latte lm: --L 39 is too short for mqar with --pairs 16 --queries 4 (needs 2(N + Q) = 40)");
    bad.queries = 17;
    REQUIRE_THROWS_WITH(check_lm_task(bad, "latte lm"),
                        "latte lm: mqar needs 1 <= --queries <= --pairs, got --pairs 16 --queries 17");
}
