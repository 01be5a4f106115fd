#include "nn/gradcheck.h"

#include <cmath>
#include <sstream>

namespace latte::nn {

GradcheckResult gradcheck_parameters(const std::vector<std::pair<std::string, Tensor>>& parameters,
                                     const std::function<Tensor()>& loss, const GradcheckOptions& options) {
    std::vector<GradcheckLeaf> leaves;
    for (const auto& [name, tensor] : parameters) leaves.push_back({name, tensor});
    const auto mismatch = gradcheck_leaves("gradcheck_module", leaves, loss, options);
    GradcheckResult result;
    if (!mismatch) {
        result.ok = true;
        result.message = "gradcheck: ok";
        return result;
    }
    const GradcheckMismatch& m = *mismatch;
    std::ostringstream msg;
    msg.precision(12);
    msg << "gradcheck: " << leaves[m.leaf].name << shape_str(m.index) << ": analytic " << m.analytic << " vs numeric "
        << m.numeric << " (diff " << std::fabs(m.analytic - m.numeric) << ")";
    result.message = msg.str();
    return result;
}

}  // namespace latte::nn
