// Module: named parameters and submodules, like torch.nn.Module. Parameters are tensor handles,
// so an optimizer that writes into them in place updates the module.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"

namespace latte::nn {

class Module {
public:
    virtual ~Module() = default;

    // Parameters of this module and its submodules in registration order, with dotted names
    // ("W_Q.weight"), as in a PyTorch state_dict.
    std::vector<std::pair<std::string, Tensor>> named_parameters() const;
    std::vector<Tensor> parameters() const;
    // This module ("") and every submodule, depth first in registration order, with dotted names
    // ("layers.0.attn"), like torch's named_modules().
    std::vector<std::pair<std::string, const Module*>> named_modules() const;
    int64_t num_parameters() const;
    void zero_grad();
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }
    // Converts every parameter (and its gradient) to `dtype` or `device` in place: each parameter
    // keeps its identity, so an optimizer built before the call steps the converted values (its
    // state follows the parameter at the next step).
    void to(DType dtype);
    void to(Device device);
    Device device() const;  // of the first parameter (cpu when there is none)
    // Module kind and sizes as strings, written into weight files' metadata.
    virtual std::map<std::string, std::string> config() const { return {}; }

protected:
    // Registers a parameter; marks it as requiring grad.
    void register_parameter(const std::string& name, Tensor value);
    // This module's own parameter `name` (throws if absent).
    const Tensor& param(const std::string& name) const;
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        children_.emplace_back(name, module);
        return module;
    }

private:
    // Points each parameter that needs it at convert(parameter), keeping its identity.
    void convert_parameters(const std::function<bool(const Tensor&)>& needs,
                            const std::function<Tensor(const Tensor&)>& convert);
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

    std::vector<std::pair<std::string, Tensor>> params_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

}  // namespace latte::nn
