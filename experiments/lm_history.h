// What a latte lm checkpoint carries beside the weights and the optimizer: the run's history
// (answers right per step, held-out evaluations, the step that reached 99%) in module.lm.* entries,
// written exactly so that a resumed run's files are identical, and the checks that a resumed
// checkpoint's module.* entries agree with its flags and weights before anything is allocated.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "experiments/checkpoint.h"
#include "nn/decoder_lm.h"

namespace latte::experiments {

// "lm.answers_correct": answers right per step, comma-separated integers.
inline const std::string kCorrectKey = "lm.answers_correct";
// "lm.steps_to_99": the first evaluated step with held-out accuracy >= kTargetAccuracy, when reached.
inline const std::string kSteps99Key = "lm.steps_to_99";
inline constexpr double kTargetAccuracy = 0.99;
// "lm.held_out": the held-out evaluations so far, step/correct/total, comma-separated (eval.csv).
inline const std::string kHeldOutKey = "lm.held_out";

struct HeldOutPoint {
    int64_t step = 0, correct = 0, total = 0;
};

std::string join_held_out(const std::vector<HeldOutPoint>& points);
// Checked against the run: steps rising within 1..step, 0 <= correct <= total, total > 0.
std::vector<HeldOutPoint> split_held_out(const std::string& text, int64_t step, const std::string& where);
void write_held_out_csv(const std::string& path, const std::vector<HeldOutPoint>& points);
std::string join_counts(const std::vector<int64_t>& counts);
std::vector<int64_t> split_counts(const std::string& text, const std::string& where);

// What a checkpoint from before a flag existed ran with: the flag's old behaviour.
std::map<std::string, std::string> flags_before_they_existed(const std::string& attention);

// The model flags (as run_config stores them) that a model config stands for, each with the
// module.* key (DecoderLM::config()) that holds it.
struct ModelFlag {
    std::string flag, module_key, value;
};
std::vector<ModelFlag> model_flags(const nn::DecoderLMConfig& c);

// The module.* keys a latte lm checkpoint holds: DecoderLM::config()'s and the run's history.
bool lm_checkpoint_module_key(const std::string& key);

// Before the model is built from a checkpoint's module.*: they must say what its config.* flags
// say, and describe exactly as many parameters as its model.* tensors hold, so that a tampered
// entry (module.mlp_hidden=400000000) is refused before anything is allocated.
void check_lm_checkpoint_model(const TrainCheckpoint& saved, const std::map<std::string, std::string>& flags,
                               const nn::DecoderLMConfig& c, const std::string& who, const std::string& path);

}  // namespace latte::experiments
