#include "tests/support/gradcheck.h"

#include <cmath>
#include <sstream>

#include "ops/ops.h"

namespace latte {
namespace {

// Storage offset of the flat (row-major) element `flat` of x.
int64_t element_offset(const Tensor& x, int64_t flat) {
    int64_t offset = 0;
    for (size_t d = x.shape().size(); d-- > 0;) {
        offset += (flat % x.shape()[d]) * x.strides()[d];
        flat /= x.shape()[d];
    }
    return offset;
}

double projected_loss(const GradcheckFn& f, const std::vector<Tensor>& inputs, const Tensor& r) {
    NoGradGuard no_grad;
    return sum(mul(f(inputs), r)).item();
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
    for (size_t i = 0; i < inputs.size(); ++i) {
        check_defined(inputs[i], "gradcheck", "input");
        LATTE_CHECK(inputs[i].dtype() == DType::Float64, "gradcheck: input ", i, " is ",
                    dtype_name(inputs[i].dtype()), "; finite differences need float64");
        LATTE_CHECK(inputs[i].is_leaf(), "gradcheck: input ", i, " is not a leaf tensor");
    }
    Tensor probe;
    {
        NoGradGuard no_grad;
        probe = f(inputs);
    }
    Generator gen(options.seed);
    const Tensor r = randn(probe.shape(), gen, probe.options());

    std::vector<Tensor> leaves = inputs;
    for (Tensor& t : leaves) t.zero_grad();
    Tensor loss = sum(mul(f(leaves), r));
    LATTE_CHECK(loss.requires_grad(), "gradcheck: no input requires grad, so there is nothing to check");
    loss.backward();

    GradcheckResult result;
    std::ostringstream msg;
    msg.precision(12);
    for (size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].requires_grad()) continue;
        const Tensor& x = inputs[i];
        const Tensor grad = x.grad();
        const std::vector<double> analytic = grad.defined() ? grad.to_vector<double>()
                                                            : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
        Backend& backend = backend_for(x.device());
        for (int64_t j = 0; j < x.numel(); ++j) {
            // One element as a 0-d view, written through the backend so any device works.
            const Tensor element = x.as_strided({}, {}, x.offset() + element_offset(x, j));
            const double saved = element.item();
            backend.fill(element.view(), saved + options.eps);
            const double plus = projected_loss(f, inputs, r);
            backend.fill(element.view(), saved - options.eps);
            const double minus = projected_loss(f, inputs, r);
            backend.fill(element.view(), saved);
            const double numeric = (plus - minus) / (2 * options.eps);
            const double a = analytic[static_cast<size_t>(j)];
            if (!(std::fabs(a - numeric) <= options.atol + options.rtol * std::fabs(numeric))) {
                msg << "gradcheck: input " << i << " " << shape_str(x.shape()) << ", element " << j << ": analytic "
                    << a << " vs numeric " << numeric << " (diff " << std::fabs(a - numeric) << ")";
                result.message = msg.str();
                return result;
            }
        }
    }
    result.ok = true;
    result.message = "gradcheck: ok";
    return result;
}

}  // namespace latte
