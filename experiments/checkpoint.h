// A training run's checkpoint, the file `latte train --resume` reads: everything the next step
// depends on, so a resumed run is bit-identical to an uninterrupted one. One safetensors file:
//   tensors   model.<parameter>      the student's weights (e.g. model.W_Q.weight)
//             optimizer.<buffer>.<i> the optimizer's buffers (nn::OptimizerState, e.g. optimizer.exp_avg.0)
//             losses                 float64 (step,): the loss of every step so far
//   metadata  latte.checkpoint = 1, step, generator.{counter,has_spare,spare} (the data stream),
//             config.<flag> (the run's flags), optimizer.<key> (kind, lr, step, ...), module.<key>
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace latte::experiments {

struct TrainCheckpoint {
    int64_t step = 0;                                   // steps done; the schedule's position
    std::vector<double> losses;                         // one per step done
    std::vector<std::pair<std::string, Tensor>> model;  // the student's named parameters
    std::map<std::string, std::string> module_config;   // the student's config()
    nn::OptimizerState optimizer;
    GeneratorState data_generator;
    std::map<std::string, std::string> run_config;  // flag name -> value
};

// Atomic: a temporary file renamed into place (nn::save_safetensors).
void save_checkpoint(const std::string& path, const TrainCheckpoint& checkpoint);
// Reads and checks the layout, that every tensor is finite, every loss non-negative and the
// generator's spare finite; throws latte::Error naming the file and what is wrong (the tensor and
// the index of a nan or inf).
TrainCheckpoint load_checkpoint(const std::string& path);

// The run's flags stored in the checkpoint (its config.* metadata), read from the file's header
// alone; throws as load_checkpoint does when the file is not a latte training checkpoint. With
// `command` ("train" or "lm"), a checkpoint the other command wrote (its module.module says:
// decoder_lm for latte lm, mha, gqa or mla for latte train) is refused first, naming the command
// that wrote it and how to resume it, instead of a flag of the other command found wanting.
std::map<std::string, std::string> load_checkpoint_flags(const std::string& path, const std::string& command = "");

// Copies the checkpoint's weights into `module`; names, shapes and dtypes must match exactly and
// every value must be finite, all checked before anything is written. Errors start with `who`.
void load_parameters(nn::Module& module, const TrainCheckpoint& checkpoint, const std::string& path,
                     const std::string& who = "latte train");

// Throws naming the first flag whose value differs between the checkpoint's run and this one;
// the flags a resumed run may change (free_on_resume) are not compared.
void check_resumable(const std::map<std::string, std::string>& saved,
                     const std::map<std::string, std::string>& current, const std::string& path);

// Checks, before anything is loaded, that the checkpoint's optimizer state belongs to the run that
// resumes it, whose freshly built `optimizer` is given (the flags alone do not cover it: the state's
// lr would replace --lr). Throws latte::Error "<who>: cannot resume from <path>: ..." naming the key:
//  - every optimizer.<key> but the step counts equals the fresh optimizer's (kind, params, lr,
//    betas, eps, weight decays, momentum, ...); lr is reported against --lr;
//  - (Adam) optimizer.step equals the checkpoint's step, and no optimizer.step.<i> exceeds it;
//  - with every_parameter_steps (each step gives every parameter a gradient, as in latte train),
//    every optimizer.step.<i> equals the step, and once step > 0 every parameter has its buffers.
//  - (Adam, AdamW) every exp_avg is within what Adam's update rule allows beside its exp_avg_sq:
//    |m| <= sqrt(C v), C = (1 - b1)^2 / (1 - b2) * sum_{k<step} (b1^2 / b2)^k (Cauchy-Schwarz;
//    52.9 for betas 0.9, 0.999), with 1% and 1e-15 of slack for rounding.
void check_resumable_optimizer(const TrainCheckpoint& checkpoint, const nn::Optimizer& optimizer,
                               bool every_parameter_steps, const std::string& who, const std::string& path);

// Throws "<who>: cannot resume from <path>: its module.<key> is A, the model has B" for the first
// key of module.* that differs from the model's config() (a missing key reads "(none)").
void check_module_config(const std::map<std::string, std::string>& saved,
                         const std::map<std::string, std::string>& current, const std::string& who,
                         const std::string& path);

}  // namespace latte::experiments
