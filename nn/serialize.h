// Weights in safetensors, the format Hugging Face and PyTorch users share:
// 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
// then the raw little-endian data. Tensor names are the PyTorch state_dict names of the spec's
// classes ("W_Q.weight", ...), and the module config goes into __metadata__.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"
#include "module.h"

namespace latte::nn {

struct SafetensorsFile {
    std::vector<std::pair<std::string, Tensor>> tensors;  // in file order, on the cpu
    std::map<std::string, std::string> metadata;
};

// Writes F32/F64 tensors atomically (a temporary file renamed into place, never a half-written file).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Reads and validates the whole file; throws latte::Error naming the file and the problem.
SafetensorsFile load_safetensors(const std::string& path);

// A module's parameters with its config() as metadata.
void save(const Module& module, const std::string& path);
// Loads every parameter of `module` from `path`. Names and shapes must match exactly (values are
// converted to the parameter's dtype); everything is checked before anything is written, so a
// bad file leaves the module untouched.
void load(Module& module, const std::string& path);

}  // namespace latte::nn
