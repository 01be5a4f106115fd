// The CPU kernels use the shared dtype dispatch.
#pragma once
#include "backends/common/dispatch.h"

namespace latte::cpu {

using latte::dispatch;
using latte::dispatch_all;
using latte::elem_t;

}  // namespace latte::cpu
