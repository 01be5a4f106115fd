#include "nn/param_groups.h"

#include <cmath>

#include "nn/embedding.h"
#include "nn/norm.h"

namespace latte::nn {

std::vector<ParamGroup> param_groups(const Module& module, double weight_decay) {
    LATTE_CHECK(std::isfinite(weight_decay) && weight_decay >= 0,
                "param_groups: weight_decay must be finite and non-negative, got ", weight_decay);
    std::vector<Tensor> exempt;  // parameters of embeddings and norms
    for (const auto& [_, m] : module.named_modules())
        if (dynamic_cast<const Embedding*>(m) || dynamic_cast<const Norm*>(m))
            for (const Tensor& t : m->parameters()) exempt.push_back(t);
    ParamGroup decay{{}, weight_decay, {}}, no_decay{{}, 0.0, {}};
    for (const auto& [name, t] : module.named_parameters()) {
        bool skip = t.dim() < 2;
        for (const Tensor& e : exempt) skip = skip || e.same_as(t);
        ParamGroup& g = skip ? no_decay : decay;
        g.params.push_back(t);
        g.names.push_back(name);
    }
    return {decay, no_decay};
}

}  // namespace latte::nn
