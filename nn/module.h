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

// A module's tensors by dotted name in a fixed order, like torch's state_dict: for each module,
// its parameters, then its buffers, then its submodules' entries.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

// What load_state_dict(..., strict = false) skipped: the module's names the dict lacks, and the
// dict's names the module lacks.
struct LoadStateDictResult {
    std::vector<std::string> missing_keys, unexpected_keys;
};

class Module {
public:
    virtual ~Module() = default;

    // ---- building a module (call these in your constructor, as in torch.nn.Module.__init__) ----
    // Registers a parameter (a trained tensor); marks it as requiring grad. Returns it.
    Tensor register_parameter(const std::string& name, Tensor value);
    // Registers a buffer: state saved and converted with the module but not trained (not in
    // parameters(), no gradient), like a running statistic or a fixed mask. Returns it.
    Tensor register_buffer(const std::string& name, Tensor value);
    // Registers a submodule; its names get the prefix "name.".
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        check_new_name(name, "register_module");
        LATTE_CHECK(module != nullptr, "register_module: '", name, "' is a null module");
        children_.emplace_back(name, module);
        return module;
    }
    // This module's own parameter or buffer `name` (throws if absent).
    const Tensor& param(const std::string& name) const;
    const Tensor& buffer(const std::string& name) const;

    // Parameters of this module and its submodules in registration order, with dotted names
    // ("W_Q.weight"), as in a PyTorch state_dict.
    std::vector<std::pair<std::string, Tensor>> named_parameters() const;
    std::vector<Tensor> parameters() const;
    std::vector<std::pair<std::string, Tensor>> named_buffers() const;
    std::vector<Tensor> buffers() const;
    // Parameters and buffers as detached handles that share the module's storage (as in PyTorch):
    // clone() them to keep a snapshot that later steps do not change.
    StateDict state_dict() const;
    // Copies `dict`'s values into this module's parameters and buffers (converting dtype and
    // device; shapes must match). Strict (the default): the names must match exactly, else it
    // throws naming every missing and unexpected key. Everything is checked before anything is
    // written, so a refused dict leaves the module untouched.
    LoadStateDictResult load_state_dict(const StateDict& dict, bool strict = true);
    // This module ("") and every submodule, depth first in registration order, with dotted names
    // ("layers.0.attn"), like torch's named_modules().
    std::vector<std::pair<std::string, const Module*>> named_modules() const;
    int64_t num_parameters() const;
    void zero_grad();
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }
    // Converts every parameter (and its gradient) and float buffer to `dtype`, or every tensor to `device`, in place: each parameter
    // keeps its identity, so an optimizer built before the call steps the converted values (its
    // state follows the parameter at the next step).
    void to(DType dtype);
    void to(Device device);
    Device device() const;  // of the first parameter (cpu when there is none)
    // Module kind and sizes as strings, written into weight files' metadata.
    virtual std::map<std::string, std::string> config() const { return {}; }

private:
    // Throws when `name` is empty, has a '.', or is taken by a parameter, buffer or submodule.
    void check_new_name(const std::string& name, const char* who) const;
    // Points each parameter and buffer that needs it at convert(tensor), keeping its identity.
    void convert_tensors(const std::function<bool(const Tensor&)>& needs,
                            const std::function<Tensor(const Tensor&)>& convert);
    enum class Collect { Parameters, Buffers, Both };
    void collect(const std::string& prefix, Collect what, std::vector<std::pair<std::string, Tensor>>& out) const;
    std::vector<std::pair<std::string, Tensor>> collected(Collect what) const;  // collect() from this module

    std::vector<std::pair<std::string, Tensor>> params_;
    std::vector<std::pair<std::string, Tensor>> buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

}  // namespace latte::nn
