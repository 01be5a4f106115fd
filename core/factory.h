// Tensor factories, like torch.zeros / torch.tensor / torch.randn.
#pragma once
#include <vector>

#include "random.h"
#include "tensor.h"

namespace latte {

Tensor zeros(const Shape& shape, const TensorOptions& options = {});
Tensor ones(const Shape& shape, const TensorOptions& options = {});
Tensor full(const Shape& shape, double value, const TensorOptions& options = {});
// [start, start + step, ...) up to but excluding end.
Tensor arange(double start, double end, double step = 1.0, const TensorOptions& options = {});
// Copies `values` (row-major) into a new tensor of `shape`; sizes must agree.
Tensor from_vector(const std::vector<double>& values, const Shape& shape, const TensorOptions& options = {});
Tensor from_vector(const std::vector<float>& values, const Shape& shape, const TensorOptions& options = {});
// Uniform in [low, high) and normal(mean, std), drawn from `gen`.
Tensor rand(const Shape& shape, Generator& gen, const TensorOptions& options = {}, double low = 0.0,
            double high = 1.0);
Tensor randn(const Shape& shape, Generator& gen, const TensorOptions& options = {}, double mean = 0.0,
             double std = 1.0);
// zeros/ones shaped like `t` (same dtype and device).
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);

}  // namespace latte
