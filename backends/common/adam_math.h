// One Adam/AdamW update of one element, through double: the CUDA kernel's and the CPU's for
// float64 (the CPU's float32 loop, backends/cpu/optim.cpp, runs in float32). PyTorch's rules: L2
// decay folds into the gradient, decoupled decay scales the weight first.
#pragma once
#include <cmath>

#include "../../core/backend.h"
#include "../../core/host_device.h"

namespace latte {

template <class T>
LATTE_HOST_DEVICE inline void adam_element(const AdamStep& s, T& p, T g, T& m, T& v) {
    if (s.decoupled) p = static_cast<T>(p * (1 - s.lr * s.weight_decay));
    else g = static_cast<T>(g + s.weight_decay * p);
    m = static_cast<T>(s.beta1 * m + (1 - s.beta1) * g);
    v = static_cast<T>(s.beta2 * v + (1 - s.beta2) * g * g);
    const double denom = sqrt(static_cast<double>(v) / s.bias2) + s.eps;
    p = static_cast<T>(p - s.lr / s.bias1 * (static_cast<double>(m) / denom));
}

}  // namespace latte
