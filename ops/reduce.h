// Reductions: sum, mean and max, over all elements or over given dims.
#pragma once
#include <vector>

#include "../core/tensor.h"

namespace latte {

Tensor sum(const Tensor& x);  // 0-d result
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Maximum values along dim. The gradient is shared equally between tied maxima (like torch.amax).
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // 0-d result, over all elements

}  // namespace latte
