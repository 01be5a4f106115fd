#include "nn/lm_tasks.h"

#include <algorithm>
#include <optional>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/cached_decoder.h"
#include "ops/ops.h"

namespace latte::nn {
namespace {

int64_t draw(Generator& gen, int64_t n) { return static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(n)); }

Tensor int64_tensor(const std::vector<int64_t>& values, const Shape& shape) {
    Tensor t = Tensor::empty(shape, TensorOptions{}.with_dtype(DType::Int64));
    std::copy(values.begin(), values.end(), t.data_ptr<int64_t>());
    return t;
}

// Index of the largest of n values (the first on ties, as argmax).
int64_t first_max(const float* row, int64_t n) {
    int64_t best = 0;
    for (int64_t j = 1; j < n; ++j)
        if (row[j] > row[best]) best = j;
    return best;
}

// Writes `pairs` key-value pairs "k1 v1 ... kN vN" at x: distinct keys from 1..nk (a partial
// Fisher-Yates shuffle), each with a value drawn uniformly from nk+1..V-1 (nk = (V-1)/2).
void write_pairs(Generator& gen, int64_t* x, int64_t pairs, int64_t V) {
    const int64_t nk = (V - 1) / 2, nv = V - 1 - nk;
    std::vector<int64_t> keys(static_cast<size_t>(nk));
    for (int64_t i = 0; i < nk; ++i) keys[size_t(i)] = 1 + i;
    for (int64_t i = 0; i < pairs; ++i) {
        std::swap(keys[size_t(i)], keys[size_t(i + draw(gen, nk - i))]);
        x[2 * i] = keys[size_t(i)];
        x[2 * i + 1] = 1 + nk + draw(gen, nv);
    }
}

}  // namespace

std::string lm_task_name(LMTask task) {
    switch (task) {
        case LMTask::Recall: return "recall";
        case LMTask::Copy: return "copy";
        case LMTask::ModAdd: return "modadd";
        case LMTask::MQAR: return "mqar";
    }
    return "?";
}

LMTask parse_lm_task(const std::string& name, const std::string& who) {
    if (name == "recall") return LMTask::Recall;
    if (name == "copy") return LMTask::Copy;
    if (name == "modadd") return LMTask::ModAdd;
    if (name == "mqar") return LMTask::MQAR;
    LATTE_FAIL(who, ": --task must be recall, copy, modadd or mqar, got '", name, "'");
}

int64_t lm_default_length(const LMTaskSpec& s) {
    switch (s.task) {
        case LMTask::ModAdd: return 4;
        case LMTask::MQAR: return 2 * (s.pairs + s.queries);
        default: return 17;
    }
}

void check_lm_task(const LMTaskSpec& s, const std::string& who) {
    LATTE_CHECK(s.batch >= 1, who, ": --batch must be at least 1, got ", s.batch);
    const std::string task = lm_task_name(s.task);
    if (s.task == LMTask::ModAdd) {
        LATTE_CHECK(s.length >= 4, who, ": --L ", s.length, " is too short for modadd (\"a + b =\" needs 4)");
        LATTE_CHECK(s.vocab >= 5, who, ": --vocab ", s.vocab,
                    " is too small for modadd (numbers mod p = vocab - 3, '+', '=' and a pad: at least 5)");
        return;
    }
    if (s.task == LMTask::MQAR) {
        LATTE_CHECK(s.pairs >= 1 && s.queries >= 1 && s.queries <= s.pairs, who, ": mqar needs 1 <= --queries <= "
                    "--pairs, got --pairs ", s.pairs, " --queries ", s.queries);
        LATTE_CHECK(s.pairs <= (int64_t{1} << 20) && s.length >= 2 * (s.pairs + s.queries), who, ": --L ", s.length,
                    " is too short for mqar with --pairs ", s.pairs, " --queries ", s.queries, " (needs 2(N + Q) = ",
                    2 * (s.pairs + s.queries), ")");
        const int64_t keys = (s.vocab - 1) / 2;
        LATTE_CHECK(keys >= s.pairs && s.vocab - 1 - keys >= 1, who, ": --vocab ", s.vocab, " is too small for mqar "
                    "with --pairs ", s.pairs, " (", s.pairs, " distinct keys plus values need a vocab of at least ",
                    2 * s.pairs + 1, ")");
        return;
    }
    LATTE_CHECK(s.length >= 3, who, ": --L ", s.length, " is too short for ", task, " (at least 3)");
    if (s.task == LMTask::Copy) {
        LATTE_CHECK(s.vocab >= 2, who, ": --vocab ", s.vocab, " is too small for copy (a separator and a token: at least 2)");
        return;
    }
    const int64_t pairs = (s.length - 1) / 2, keys = (s.vocab - 1) / 2;
    LATTE_CHECK(keys >= pairs && s.vocab - 1 - keys >= 1, who, ": --vocab ", s.vocab, " is too small for recall with --L ",
                s.length, " (", pairs, " distinct keys plus values need a vocab of at least ", 2 * pairs + 1, ")");
}

LMBatch make_lm_batch(const LMTaskSpec& s, Generator& gen) {
    check_lm_task(s);
    const int64_t B = s.batch, L = s.length, V = s.vocab;
    std::vector<int64_t> ids(static_cast<size_t>(B * L), 0), targets(static_cast<size_t>(B * L), kLMIgnore);
    for (int64_t b = 0; b < B; ++b) {
        int64_t* x = ids.data() + b * L;
        int64_t* t = targets.data() + b * L;
        if (s.task == LMTask::Recall) {
            const int64_t K = (L - 1) / 2, o = L - (2 * K + 1);
            write_pairs(gen, x + o, K, V);
            const int64_t q = draw(gen, K);
            x[L - 1] = x[o + 2 * q];
            t[L - 1] = x[o + 2 * q + 1];
        } else if (s.task == LMTask::MQAR) {
            // Pairs first, then token-0 filler, then the queries: a longer L puts them further apart.
            const int64_t N = s.pairs, Q = s.queries, first_query = L - 2 * Q;
            write_pairs(gen, x, N, V);
            std::vector<int64_t> order(static_cast<size_t>(N));
            for (int64_t i = 0; i < N; ++i) order[size_t(i)] = i;
            for (int64_t j = 0; j < Q; ++j) {  // Q distinct pairs queried, in random order
                std::swap(order[size_t(j)], order[size_t(j + draw(gen, N - j))]);
                const int64_t at = first_query + 2 * j, pair = order[size_t(j)];
                x[at] = x[2 * pair];
                x[at + 1] = t[at] = x[2 * pair + 1];
            }
        } else if (s.task == LMTask::Copy) {
            const int64_t n = (L - 1) / 2, o = L - (2 * n + 1);
            for (int64_t i = 0; i < n; ++i) x[o + i] = x[o + n + 1 + i] = 1 + draw(gen, V - 1);
            x[o + n] = 0;
            for (int64_t i = 0; i < n; ++i) t[o + n + i] = x[o + i];
        } else {
            const int64_t p = V - 3;
            std::fill(x, x + L, p + 2);
            const int64_t a = draw(gen, p), c = draw(gen, p);
            x[L - 4] = a;
            x[L - 3] = p;
            x[L - 2] = c;
            x[L - 1] = p + 1;
            t[L - 1] = (a + c) % p;
        }
    }
    return {int64_tensor(ids, {B, L}), int64_tensor(targets, {B, L})};
}

int64_t lm_prompt_length(const LMTaskSpec& s) {
    if (s.task == LMTask::MQAR) return s.length - 2 * s.queries + 1;
    if (s.task != LMTask::Copy) return s.length;
    const int64_t n = (s.length - 1) / 2;
    return s.length - n;  // everything up to and including the separator
}

int64_t lm_answer_length(const LMTaskSpec& s) { return s.task == LMTask::Copy ? (s.length - 1) / 2 : 1; }

int64_t lm_answers_per_sequence(const LMTaskSpec& s) {
    return s.task == LMTask::MQAR ? s.queries : lm_answer_length(s);
}

LMAccuracy lm_accuracy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
    LATTE_CHECK(logits.dim() == 3 && targets.dim() == 2 && targets.dtype() == DType::Int64 &&
                    logits.size(0) == targets.size(0) && logits.size(1) == targets.size(1),
                "lm_accuracy: expected logits (B, L, V) and targets (B, L) int64, got ", shape_str(logits.shape()),
                " and ", shape_str(targets.shape()));
    const std::vector<float> values = logits.to_vector<float>();
    const std::vector<int64_t> t = targets.to_vector<int64_t>();
    const int64_t V = logits.size(2);
    LMAccuracy acc;
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == ignore_index) continue;
        ++acc.total;
        acc.correct += first_max(values.data() + i * size_t(V), V) == t[i];
    }
    return acc;
}

Tensor lm_generate(const DecoderLM& model, const Tensor& prompt, int64_t tokens, bool use_cache) {
    LATTE_CHECK(prompt.dim() == 2 && prompt.dtype() == DType::Int64 && prompt.size(0) >= 1 && prompt.size(1) >= 1 &&
                    tokens >= 0,
                "lm_generate: expected a prompt (B >= 1, n >= 1) int64 and tokens >= 0, got ",
                dtype_name(prompt.dtype()), " ", shape_str(prompt.shape()), " and tokens ", tokens);
    NoGradGuard no_grad;
    const int64_t B = prompt.size(0), n = prompt.size(1), V = model.lm_config().vocab;
    // Each sequence's next token, from the last position of logits (B, m, V).
    auto pick = [&](const Tensor& logits) {
        const std::vector<float> v = logits.to_vector<float>();
        const int64_t m = logits.size(1);
        std::vector<int64_t> next(static_cast<size_t>(B));
        for (int64_t b = 0; b < B; ++b) next[size_t(b)] = first_max(v.data() + ((b * m) + m - 1) * V, V);
        return next;
    };
    std::vector<int64_t> seqs = prompt.to_vector<int64_t>();  // (B, n + step), the uncached path's input
    std::vector<int64_t> out(static_cast<size_t>(B * tokens));  // (B, tokens), filled column by column
    std::optional<CachedDecoderLM> cached;
    if (use_cache && tokens > 0) cached.emplace(model, B, n + tokens);
    Tensor next_ids = prompt;
    for (int64_t step = 0; step < tokens; ++step) {
        const std::vector<int64_t> next =
            cached ? pick(cached->step(next_ids)) : pick(model.forward(int64_tensor(seqs, {B, n + step})));
        std::vector<int64_t> grown;  // each sequence with its new token
        grown.reserve(size_t(B * (n + step + 1)));
        for (int64_t b = 0; b < B; ++b) {
            grown.insert(grown.end(), seqs.begin() + b * (n + step), seqs.begin() + (b + 1) * (n + step));
            grown.push_back(next[size_t(b)]);
            out[size_t(b * tokens + step)] = next[size_t(b)];
        }
        seqs = std::move(grown);
        next_ids = int64_tensor(next, {B, 1});
    }
    return int64_tensor(out, {B, tokens});
}

}  // namespace latte::nn
