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
Tensor amax(const Tensor& x, int64_t dim, bool keepdim = false);
// torch.max(x, dim): the maximum values and the int64 index of the first maximum along dim (a NaN
// counts as the maximum). The gradient goes to the returned index only.
struct MaxResult {
    Tensor values;
    Tensor indices;
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
// torch.argmax(x, dim, keepdim): the int64 index of the first maximum along dim (max's indices);
// not differentiable.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// 0-d maximum over all elements; tied maxima share the gradient (like torch.max(x)).
Tensor max(const Tensor& x);

}  // namespace latte
