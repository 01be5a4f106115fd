// Synthetic token tasks for small decoder LMs (`latte lm`, and your own experiments): batches drawn
// on the fly from a seeded Generator, their accuracy, and greedy generation. Each batch is ids (B, L) int64 and targets (B, L) int64 holding kLMIgnore everywhere
// but the answer positions, so DecoderLM::loss and lm_accuracy score the answers only.
// Shorter prompts are left-padded with token 0 (recall, copy) or token V-1 (modadd) up to L.
//   recall  token 0 pad; keys 1..nk, values nk+1..V-1 (nk = (V-1)/2): K = (L-1)/2 pairs
//           "k1 v1 ... kK vK q" with distinct keys, q one of them; the target at the last
//           position is q's value.  Needs L >= 3 and nk >= K (V >= 2K+1) and V - 1 - nk >= 1.
//   copy    token 0 separator/pad; n = (L-1)/2 tokens s from 1..V-1, then 0, then s again; the
//           target at the separator is s[0] and at the i-th repeated token s[i+1] (one step
//           ahead): n answers.  Needs L >= 3, V >= 2.
//   modadd  p = V - 3; tokens 0..p-1 are numbers, p is "+", p+1 is "=", p+2 pads:
//           "a + b =" with the target (a + b) mod p at "=".  Needs L >= 4, V >= 5.
//   mqar    multi-query associative recall (Zoology, Arora et al. 2023): token 0 pads; keys
//           1..nk, values nk+1..V-1 (nk = (V-1)/2). N pairs "k1 v1 ... kN vN" with distinct keys,
//           then token-0 filler up to L, then Q of those keys in random order, each followed by its
//           value: "q1 a1 ... qQ aQ" (a longer L puts the queries further from the pairs); the
//           target at q_j is a_j (the a_j are inputs too, as in a
//           document: each answer is predicted before it is seen). Q answers per sequence.
//           Needs 1 <= Q <= N, L >= 2(N + Q), nk >= N and V - 1 - nk >= 1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/random.h"
#include "../core/tensor.h"
#include "decoder_lm.h"

namespace latte::nn {

constexpr int64_t kLMIgnore = -100;

enum class LMTask { Recall, Copy, ModAdd, MQAR };
std::string lm_task_name(LMTask task);  // "recall", "copy", "modadd", "mqar"
// Throws "<who>: --task must be recall, copy, modadd or mqar, got 'x'".
LMTask parse_lm_task(const std::string& name, const std::string& who = "lm_task");

struct LMTaskSpec {
    LMTask task = LMTask::Recall;
    int64_t vocab = 32, length = 17, batch = 8;
    int64_t pairs = 8, queries = 8;  // mqar's N and Q (the other tasks ignore them)
};
// The task's default sequence length: 17 for recall and copy, 4 for modadd, 2(N + Q) for mqar.
int64_t lm_default_length(const LMTaskSpec& spec);
// Throws "<who>: ..." naming --vocab / --L when the task does not fit them.
void check_lm_task(const LMTaskSpec& spec, const std::string& who = "lm_task");

struct LMBatch {
    Tensor ids, targets;  // (B, L) int64 each
};
// One batch drawn from `gen` (only next_u64 draws: the same seed gives the same batches).
LMBatch make_lm_batch(const LMTaskSpec& spec, Generator& gen);

// Where a prompt ends for generation: the number of leading tokens of each sequence before the
// first answer is generated (recall, modadd: L; copy: up to and including the separator), and how
// many tokens answer it (recall, modadd: 1; copy: n).
// (mqar: up to and including the first query, answered by 1 token.)
int64_t lm_prompt_length(const LMTaskSpec& spec);
int64_t lm_answer_length(const LMTaskSpec& spec);
// Answer positions per sequence (scored by the loss and accuracy): copy n, mqar Q, else 1.
int64_t lm_answers_per_sequence(const LMTaskSpec& spec);

// Token accuracy on answer positions: argmax over the last dim of logits (B, L, V) equal to
// targets (B, L), counted over targets != ignore_index.
struct LMAccuracy {
    int64_t correct = 0, total = 0;
    double value() const { return total ? double(correct) / double(total) : 0.0; }
};
LMAccuracy lm_accuracy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = kLMIgnore);

// Greedy continuation of prompt (B, n) int64 by `tokens` new tokens, each the argmax of the last
// logits. With use_cache, the model decodes through a CachedDecoderLM (nn/cached_decoder.h: a
// prefill of the prompt, then one step per token); otherwise each token recomputes model.forward
// over the whole sequence. Returns (B, tokens) int64. No autodiff graph is recorded.
Tensor lm_generate(const DecoderLM& model, const Tensor& prompt, int64_t tokens, bool use_cache = true);

}  // namespace latte::nn
