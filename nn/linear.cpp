#include "nn/linear.h"

#include <cmath>

#include "ops/ops.h"

namespace latte::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen, DType dtype)
    : in_(in_features), out_(out_features), has_bias_(bias) {
    LATTE_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in=", in_features,
                " out=", out_features);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    const TensorOptions opts = TensorOptions{}.with_dtype(dtype);
    register_parameter("weight", rand({out_features, in_features}, gen, opts, -bound, bound));
    if (bias) register_parameter("bias", rand({out_features}, gen, opts, -bound, bound));
}

void Linear::set_weight(const Tensor& w) {
    check_defined(w, "Linear::set_weight", "w");
    LATTE_CHECK(w.shape() == weight().shape(), "Linear::set_weight: got ", shape_str(w.shape()), ", the weight is ",
                shape_str(weight().shape()), " (out, in)");
    NoGradGuard no_grad;
    copy_(weight(), latte::to(w.detach(), weight().device()));
}

Tensor Linear::forward(const Tensor& x) const {
    check_defined(x, "Linear", "x");
    LATTE_CHECK(x.dim() >= 1 && x.size(-1) == in_, "Linear: input ", shape_str(x.shape()), " does not end in ", in_,
                " features (weight ", shape_str(weight().shape()), ")");
    Tensor y = matmul(x, transpose(weight(), 0, 1));
    return has_bias_ ? add(y, param("bias")) : y;
}

}  // namespace latte::nn
