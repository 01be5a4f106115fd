#include "ops/linalg.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/checks.h"
#include "ops/movement.h"
#include "ops/reduce.h"

namespace latte {

SVD svd(const Tensor& a) {
    check_defined(a, "svd", "a");
    check_floating("svd", a);
    LATTE_CHECK(a.dim() == 2, "svd: needs a 2-D matrix, got shape ", shape_str(a.shape()));
    LATTE_CHECK(a.device().is_cpu(), "svd: runs on the CPU, got a ", shape_str(a.shape()), " tensor on ",
                a.device().str(), "; move it with to(Device::cpu()) first");
    LATTE_CHECK(!(a.requires_grad() && grad_mode_enabled()), "svd: not differentiable, got a ",
                shape_str(a.shape()), " tensor that requires grad; detach() it or use NoGradGuard");
    const int64_t m = a.size(0), n = a.size(1), k = std::min(m, n);
    LATTE_CHECK(m > 0 && n > 0, "svd: empty matrix of shape ", shape_str(a.shape()));
    Tensor work = clone(a.detach());  // LAPACK overwrites its input
    for (double v : work.to_vector<double>())
        LATTE_CHECK(std::isfinite(v), "svd: the ", shape_str(a.shape()), " matrix holds NaN or Inf");
    const TensorOptions options = work.options();
    SVD out{Tensor::empty({m, k}, options), Tensor::empty({k}, options), Tensor::empty({k, n}, options)};
    backend_for(a.device())
        .svd(a.dtype(), m, n, work.view().data, out.S.view().data, out.U.view().data, out.Vh.view().data);
    return out;
}

int64_t matrix_rank(const Tensor& a, double rtol) {
    const std::vector<double> s = svd(a).S.to_vector<double>();
    if (rtol < 0) {
        const double eps = a.dtype() == DType::Float32 ? std::numeric_limits<float>::epsilon()
                                                       : std::numeric_limits<double>::epsilon();
        rtol = double(std::max(a.size(0), a.size(1))) * eps;
    }
    const double cutoff = rtol * s.front();
    return std::count_if(s.begin(), s.end(), [cutoff](double v) { return v > cutoff; });
}

}  // namespace latte
