// Divergence: a non-finite loss, gradient, weight, optimizer buffer or reported figure stops a
// run with a latte::Error naming the command (`who`, e.g. "latte lm"), the step and the tensor or
// figure, before anything is saved from that state. `after` ends the message (what happened to
// the files).
#pragma once
#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace latte::experiments {

void check_finite_loss(const std::string& who, double loss, int64_t step, double lr, const std::string& after);
void check_finite_gradients(const std::string& who, const nn::Module& module, int64_t step, double lr,
                            const std::string& after);
void check_finite_parameters(const std::string& who, const nn::Module& module, int64_t step, double lr,
                             const std::string& after);
// Every buffer finite, and Adam's exp_avg_sq non-negative: checked before a checkpoint is written.
void check_optimizer_state(const std::string& who, const nn::OptimizerState& state, int64_t step, double lr,
                           const std::string& after);
// A figure the run reports or decides by (`what`, e.g. "the held-out loss"), computed after `step`
// training steps: a non-finite one stops the run ("<who>: the held-out loss is nan after step 3
// (lr 1e+30): training diverged ...").
void check_finite_figure(const std::string& who, const std::string& what, double value, int64_t step, double lr,
                         const std::string& after);
// "nan", "inf" or "-inf" for a non-finite value (std::to_string would give "-nan").
std::string nonfinite_text(double value);

}  // namespace latte::experiments
