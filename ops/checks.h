// Helpers shared by the ops' implementations (not public API): input checks that throw
// latte::Error naming the op and the shapes, and a pointwise kernel call with no graph.
#pragma once
#include "../core/backend.h"
#include "../core/tensor.h"

namespace latte {

// a and b are defined and share dtype and device.
void check_same_kind(const char* op, const Tensor& a, const Tensor& b);
// t is float32/float64 on any device (int64 tensors are refused).
void check_floating(const char* op, const Tensor& t);

// op(x) (alpha is the scalar of the *Scalar ops) into a new tensor, recording no graph.
Tensor unary_raw(UnaryOp op, const Tensor& x, double alpha = 0.0);

}  // namespace latte
