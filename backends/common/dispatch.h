// dispatch(dtype, f): calls f with a typed null pointer (float* or double*), so a kernel body
// (CPU loop or CUDA launch) is written once as a generic lambda. Compute kernels are floating
// point only: dispatch refuses Int64. dispatch_all adds int64_t, for copy and fill.
#pragma once
#include <cstdint>
#include <type_traits>

#include "../../core/dtype.h"
#include "../../core/error.h"

namespace latte {

template <class F>
void dispatch(DType dtype, F&& f) {
    switch (dtype) {
        case DType::Float32: f(static_cast<float*>(nullptr)); return;
        case DType::Float64: f(static_cast<double*>(nullptr)); return;
        case DType::Int64: break;
    }
    LATTE_FAIL("kernel: ", dtype_name(dtype), " tensors support only copies, fills and views; convert with to(dtype)");
}

template <class F>
void dispatch_all(DType dtype, F&& f) {
    if (dtype == DType::Int64) return f(static_cast<int64_t*>(nullptr));
    dispatch(dtype, f);
}

template <class Tag>
using elem_t = std::remove_pointer_t<Tag>;

}  // namespace latte
