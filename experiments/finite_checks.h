// Divergence: a non-finite loss, gradient or weight stops training with a latte::Error naming
// the step and the tensor, before anything is saved from that state. `after` ends the message
// (what happened to the files).
#pragma once
#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace latte::experiments {

void check_finite_loss(double loss, int64_t step, double lr, const std::string& after);
void check_finite_gradients(const nn::Module& module, int64_t step, double lr, const std::string& after);
void check_finite_parameters(const nn::Module& module, int64_t step, double lr, const std::string& after);
// Every buffer finite, and Adam's exp_avg_sq non-negative: checked before a checkpoint is written.
void check_optimizer_state(const nn::OptimizerState& state, int64_t step, double lr, const std::string& after);
// "nan", "inf" or "-inf" for a non-finite value (std::to_string would give "-nan").
std::string nonfinite_text(double value);

}  // namespace latte::experiments
