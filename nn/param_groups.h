// The usual optimizer parameter groups of a language model: weight decay on matrices, none on
// norms, biases and embeddings (as nanoGPT / Hugging Face do). Pass the result to AdamW.
#pragma once
#include <vector>

#include "module.h"
#include "optim.h"

namespace latte::nn {

// {decay group (weight_decay), no-decay group (0)}, each with its parameters' names, in the
// module's parameter order. No decay: every parameter of an Embedding or a Norm (RMSNorm,
// LayerNorm) module, and every parameter with fewer than 2 dims (biases, gains).
std::vector<ParamGroup> param_groups(const Module& module, double weight_decay);

}  // namespace latte::nn
