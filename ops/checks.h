// Input checks shared by the ops: they throw latte::Error naming the op and the shapes.
#pragma once
#include "../core/tensor.h"

namespace latte {

// a and b are defined and share dtype and device.
void check_same_kind(const char* op, const Tensor& a, const Tensor& b);
// t is float32/float64 on any device (always true today; kept so new dtypes are checked here).
void check_floating(const char* op, const Tensor& t);

}  // namespace latte
