#include "nn/norm.h"

#include <cmath>

#include "ops/ops.h"

namespace latte::nn {

Norm::Norm(const char* who, int64_t dim, double eps) : dim_(dim), eps_(eps) {
    LATTE_CHECK(dim > 0 && std::isfinite(eps) && eps >= 0, who, ": need D > 0 and a finite eps >= 0, got D=", dim,
                " eps=", eps);
}

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype) : Norm("RMSNorm", dim, eps) {
    register_parameter("weight", ones({dim}, TensorOptions{}.with_dtype(dtype)));
}

Tensor RMSNorm::forward(const Tensor& x) const { return rms_norm(x, param("weight"), eps()); }

LayerNorm::LayerNorm(int64_t dim, double eps, DType dtype) : Norm("LayerNorm", dim, eps) {
    register_parameter("weight", ones({dim}, TensorOptions{}.with_dtype(dtype)));
    register_parameter("bias", zeros({dim}, TensorOptions{}.with_dtype(dtype)));
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, param("weight"), param("bias"), eps()); }

std::shared_ptr<Norm> make_norm(NormType kind, int64_t dim, DType dtype, double eps) {
    if (kind == NormType::RMS) return std::make_shared<RMSNorm>(dim, eps > 0 ? eps : 1e-6, dtype);
    return std::make_shared<LayerNorm>(dim, eps > 0 ? eps : 1e-5, dtype);
}

}  // namespace latte::nn
