// An attention module from a weights file: kind and sizes from the file's metadata. The shapes
// those sizes imply are checked (overflow included) against the file's header before anything
// is allocated, so a small file cannot make latte reserve gigabytes for tensors it does not hold.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attention.h"

namespace latte::nn {

// Parameter names and shapes of the module make_attention(config) builds; throws latte::Error
// naming `who` for a missing, non-integer, non-positive, inconsistent or overflowing size.
std::vector<std::pair<std::string, Shape>> attention_parameter_shapes(const std::map<std::string, std::string>& config,
                                                                     const std::string& who);
// The module `path` describes, in `dtype`, with the file's weights (nn::load).
std::shared_ptr<Attention> load_attention(const std::string& path, DType dtype = DType::Float32);

}  // namespace latte::nn
