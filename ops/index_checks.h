// Host-side checks of int64 index tensors (embedding ids, cross-entropy targets). Internal.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace latte {

// The multi-index of flat position `flat` in `shape`, as "[i,j,...]".
std::string index_str(const Shape& shape, int64_t flat);
// Throws unless t is a defined int64 tensor on `device`: "<op>: <what> must be int64, got ...".
void check_index_tensor(const char* op, const char* what, const Tensor& t, Device device);

}  // namespace latte
