#include "ops/checks.h"

namespace latte {

void check_same_kind(const char* op, const Tensor& a, const Tensor& b) {
    check_defined(a, op, "a");
    check_defined(b, op, "b");
    LATTE_CHECK(a.device() == b.device(), op, ": tensors are on different devices (", a.device().str(), " ",
                shape_str(a.shape()), " vs ", b.device().str(), " ", shape_str(b.shape()),
                "); move one with to(device)");
    LATTE_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch (", dtype_name(a.dtype()), " ", shape_str(a.shape()),
                " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()), "); convert one with to(dtype)");
}

Tensor unary_raw(UnaryOp op, const Tensor& x, double alpha) {
    Tensor out = Tensor::empty(x.shape(), x.options());
    backend_for(x.device()).unary(op, alpha, out.view(), x.view());
    return out;
}

void check_floating(const char* op, const Tensor& t) {
    check_defined(t, op, "input");
    switch (t.dtype()) {
        case DType::Float32:
        case DType::Float64: return;
        case DType::Int64: break;
    }
    LATTE_FAIL(op, ": expects a floating-point tensor, got int64 of shape ", shape_str(t.shape()),
               "; convert it with to(dtype)");
}

}  // namespace latte
