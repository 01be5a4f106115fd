// Editing a checkpoint as an attacker (or a bad disk) would: load it with latte's own safetensors
// API, change metadata or tensors, write it elsewhere.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/serialize.h"

namespace latte::test {

using Metadata = std::map<std::string, std::string>;
using Tensors = std::vector<std::pair<std::string, Tensor>>;

// Writes `from` to `to` after `edit` changed its metadata and tensors.
inline void tamper(const std::string& from, const std::string& to, const std::function<void(Metadata&, Tensors&)>& edit) {
    nn::SafetensorsFile file = nn::load_safetensors(from);
    edit(file.metadata, file.tensors);
    nn::save_safetensors(to, file.tensors, file.metadata);
}

}  // namespace latte::test
