// The LM task helpers live in the installed library (nn/lm_tasks.h); the CLI and its tests keep
// calling them by their latte::experiments names.
#pragma once
#include "nn/lm_tasks.h"

namespace latte::experiments {
using nn::check_lm_task;
using nn::kLMIgnore;
using nn::lm_accuracy;
using nn::lm_answer_length;
using nn::lm_answers_per_sequence;
using nn::lm_default_length;
using nn::lm_generate;
using nn::lm_prompt_length;
using nn::lm_task_name;
using nn::LMAccuracy;
using nn::LMBatch;
using nn::LMTask;
using nn::LMTaskSpec;
using nn::make_lm_batch;
using nn::parse_lm_task;
}  // namespace latte::experiments
