#include "ops/gradcheck.h"

#include <cmath>
#include <sstream>

#include "ops/ops.h"

namespace latte {
namespace {

// Row-major index of the flat element `flat` of `shape`.
Shape unravel(const Shape& shape, int64_t flat) {
    Shape index(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return index;
}

int64_t storage_offset(const Tensor& x, const Shape& index) {
    int64_t offset = x.offset();
    for (size_t d = 0; d < index.size(); ++d) offset += index[d] * x.strides()[d];
    return offset;
}

// Clears the leaves' gradients for the check's own backward and puts the previous ones back
// when it ends, also by an exception. Restores in reverse, so a leaf listed twice ends with
// the gradient it had before the first entry cleared it.
class SavedGrads {
public:
    explicit SavedGrads(const std::vector<GradcheckLeaf>& leaves) {
        for (const GradcheckLeaf& leaf : leaves) {
            Tensor handle = leaf.tensor;  // shares the leaf's autograd state
            saved_.emplace_back(handle, handle.grad());
            handle.set_grad(Tensor());
        }
    }
    ~SavedGrads() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) it->first.set_grad(it->second);
    }
    SavedGrads(const SavedGrads&) = delete;
    SavedGrads& operator=(const SavedGrads&) = delete;

private:
    std::vector<std::pair<Tensor, Tensor>> saved_;  // leaf, its gradient before the check
};

}  // namespace

std::optional<GradcheckMismatch> gradcheck_leaves(const char* who, const std::vector<GradcheckLeaf>& leaves,
                                                  const std::function<Tensor()>& f, const GradcheckOptions& options) {
    for (const GradcheckLeaf& leaf : leaves) {
        check_defined(leaf.tensor, who, leaf.name.c_str());
        LATTE_CHECK(leaf.tensor.dtype() == DType::Float64, who, ": ", leaf.name, " is ",
                    dtype_name(leaf.tensor.dtype()), "; finite differences need float64");
        LATTE_CHECK(leaf.tensor.is_leaf(), who, ": ", leaf.name, " is not a leaf tensor");
    }
    auto projected = [&f](const Tensor& r) {
        NoGradGuard no_grad;
        return sum(mul(f(), r)).item();
    };
    Tensor probe;
    {
        NoGradGuard no_grad;
        probe = f();
    }
    Generator gen(options.seed);
    const Tensor r = randn(probe.shape(), gen, probe.options());

    std::vector<std::vector<double>> analytic(leaves.size());
    {
        SavedGrads saved(leaves);
        Tensor loss = sum(mul(f(), r));
        LATTE_CHECK(loss.requires_grad(), who, ": nothing that requires grad reaches the output, so there is nothing to check");
        loss.backward();
        for (size_t i = 0; i < leaves.size(); ++i) {
            const Tensor grad = leaves[i].tensor.grad();
            // No gradient means the output does not depend on the leaf: analytically zero.
            analytic[i] = grad.defined() ? grad.to_vector<double>()
                                         : std::vector<double>(static_cast<size_t>(leaves[i].tensor.numel()), 0.0);
        }
    }

    for (size_t i = 0; i < leaves.size(); ++i) {
        const Tensor& x = leaves[i].tensor;
        if (!x.requires_grad()) continue;
        Backend& backend = backend_for(x.device());
        for (int64_t j = 0; j < x.numel(); ++j) {
            // One element as a 0-d view, written through the backend so any device works.
            Shape index = unravel(x.shape(), j);
            const Tensor element = x.as_strided({}, {}, storage_offset(x, index));
            const double saved = element.item();
            double plus = 0, minus = 0;
            try {
                backend.fill(element.view(), saved + options.eps);
                plus = projected(r);
                backend.fill(element.view(), saved - options.eps);
                minus = projected(r);
            } catch (...) {
                backend.fill(element.view(), saved);  // float64 holds `saved` exactly
                throw;
            }
            backend.fill(element.view(), saved);
            const double numeric = (plus - minus) / (2 * options.eps);
            const double a = analytic[i][static_cast<size_t>(j)];
            if (!(std::fabs(a - numeric) <= options.atol + options.rtol * std::fabs(numeric)))
                return GradcheckMismatch{i, j, std::move(index), a, numeric};
        }
    }
    return std::nullopt;
}

GradcheckResult gradcheck_result(const std::optional<GradcheckMismatch>& mismatch, const std::string& where) {
    GradcheckResult result;
    if (!mismatch) {
        result.ok = true;
        result.message = "gradcheck: ok";
        return result;
    }
    std::ostringstream msg;
    msg.precision(12);
    msg << "gradcheck: " << where << ": analytic " << mismatch->analytic << " vs numeric " << mismatch->numeric
        << " (diff " << std::fabs(mismatch->analytic - mismatch->numeric) << ")";
    result.message = msg.str();
    return result;
}

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
    std::vector<GradcheckLeaf> leaves;
    for (size_t i = 0; i < inputs.size(); ++i) leaves.push_back({"input " + std::to_string(i), inputs[i]});
    const auto mismatch = gradcheck_leaves("gradcheck", leaves, [&] { return f(inputs); }, options);
    if (!mismatch) return gradcheck_result(mismatch, "");
    return gradcheck_result(mismatch, "input " + std::to_string(mismatch->leaf) + " " +
                                          shape_str(inputs[mismatch->leaf].shape()) + ", element " +
                                          std::to_string(mismatch->element));
}

}  // namespace latte
