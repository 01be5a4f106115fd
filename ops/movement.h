// Views and data movement: reshape, permute, expand, slicing, concatenation, dtype/device moves.
// View ops share storage with their input (like PyTorch) and record a backward node.
#pragma once
#include <vector>

#include "../core/tensor.h"

namespace latte {

// New shape with the same number of elements; one size may be -1. A view when the input is
// contiguous, a copy otherwise.
Tensor reshape(const Tensor& x, Shape shape);
// Like reshape but never copies: throws when the input is not contiguous.
Tensor view(const Tensor& x, Shape shape);
Tensor flatten(const Tensor& x);  // 1-D
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
// Broadcasts size-1 dims (and new leading dims) to `shape` as a stride-0 view; -1 keeps a size.
Tensor expand(const Tensor& x, const Shape& shape);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);  // dim must have size 1
Tensor squeeze(const Tensor& x);               // drops every size-1 dim
// Elements [start, start + length) along dim, as a view.
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
// Python-style x[..., start:end:step, ...] on one dim (negative start/end count from the end).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);  // drops dim
Tensor contiguous(const Tensor& x);  // x itself when already contiguous
Tensor clone(const Tensor& x);       // always a new contiguous copy
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
// Tiles x `repeats[i]` times along dim i, like torch.Tensor.repeat (one count per dim of x).
Tensor repeat(const Tensor& x, const std::vector<int64_t>& repeats);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// Sums x down to `shape` (the reverse of broadcasting x from shape): the backward of expand.
Tensor sum_to(const Tensor& x, const Shape& shape);
Tensor to(const Tensor& x, DType dtype);
// Writes src's values into dst in place (src broadcast to dst's shape, converted to dst's dtype).
// Records no graph, so it is refused on a tensor that requires grad while grad mode is on:
// optimizers and loaders call it under NoGradGuard.
void copy_(const Tensor& dst, const Tensor& src);
Tensor to(const Tensor& x, Device device);

}  // namespace latte
