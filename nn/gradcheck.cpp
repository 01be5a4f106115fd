#include "nn/gradcheck.h"

namespace latte::nn {

GradcheckResult gradcheck_parameters(const std::vector<std::pair<std::string, Tensor>>& parameters,
                                     const std::function<Tensor()>& loss, const GradcheckOptions& options) {
    std::vector<GradcheckLeaf> leaves;
    for (const auto& [name, tensor] : parameters) leaves.push_back({name, tensor});
    const auto mismatch = gradcheck_leaves("gradcheck_module", leaves, loss, options);
    return gradcheck_result(mismatch, mismatch ? leaves[mismatch->leaf].name + shape_str(mismatch->index) : "");
}

}  // namespace latte::nn
