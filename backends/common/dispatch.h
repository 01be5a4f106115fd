// dispatch(dtype, f): calls f with a typed null pointer (float* or double*), so a kernel body
// (CPU loop or CUDA launch) is written once as a generic lambda.
#pragma once
#include <type_traits>

#include "../../core/dtype.h"

namespace latte {

template <class F>
void dispatch(DType dtype, F&& f) {
    switch (dtype) {
        case DType::Float32: f(static_cast<float*>(nullptr)); return;
        case DType::Float64: f(static_cast<double*>(nullptr)); return;
    }
}

template <class Tag>
using elem_t = std::remove_pointer_t<Tag>;

}  // namespace latte
