// The machine-readable result of one `latte lm` run: OUT/NAME/summary.json, read by
// scripts/lm_study_summary.py to build the accuracy-vs-KV-cache study.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace latte::experiments {

struct LMRunSummary {
    std::string task, attention, name;
    bool rope = false;  // whether the model has rotary dims (mha/gqa with RoPE on, or mla_rope)
    std::string rope_pairing = "rotate_half";
    bool latent_norm = false;  // mla, mla_rope: RMSNorm on the latent
    int64_t q_rank = 0;        // mla, mla_rope: query compression (0: none)
    int64_t layers = 0, D = 0, H = 0, G = 0, d = 0, r = 0, d_R = 0, vocab = 0, L = 0, batch = 0;
    int64_t pairs = 0, queries = 0;  // mqar's N and Q (0 for the other tasks)
    double lr = 0;                   // the peak learning rate (--lr)
    double seconds = 0;              // training and evaluation time of this invocation
    uint64_t seed = 0;
    int64_t steps = 0;  // training steps run in all (0: --load ... --steps 0, evaluation only)
    int64_t eval_every = 0, eval_batches = 0, parameters = 0;
    double held_out_accuracy = 0, held_out_loss = 0;
    int64_t held_out_correct = 0, held_out_total = 0;
    int64_t kv_numbers_per_layer = 0, kv_bytes_per_token = 0;  // per token: all layers, float32
    std::optional<int64_t> steps_to_99;  // first evaluated step with held-out accuracy >= 0.99
    std::string loaded_from;             // the --load file, "" when none
};

// The summary as one JSON object (keys in a fixed order; a non-finite number and an absent
// steps_to_99 or loaded_from are null).
std::string lm_summary_json(const LMRunSummary& s);
// Writes it atomically (core/atomic_file.h).
void write_lm_summary(const std::string& path, const LMRunSummary& s);

}  // namespace latte::experiments
