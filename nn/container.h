// Containers of modules, like torch.nn.Sequential and torch.nn.ModuleList: children are
// registered under their index, so parameters are named "0.weight", "1.weight", ...
#pragma once
#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "module.h"

namespace latte::nn {

// An indexed list of submodules (any Module).
class ModuleList : public Module {
public:
    template <class M>
        requires std::derived_from<M, Module>
    std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
        LATTE_CHECK(module != nullptr, "ModuleList::push_back: null module");
        register_module(std::to_string(items_.size()), module);
        items_.push_back(module);
        return module;
    }
    size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }
    const std::shared_ptr<Module>& operator[](size_t i) const {
        LATTE_CHECK(i < items_.size(), "ModuleList: index ", i, " out of range (size ", items_.size(), ")");
        return items_[i];
    }
    // The i-th module as an M (throws if it is not one).
    template <class M>
    std::shared_ptr<M> at(size_t i) const {
        auto m = std::dynamic_pointer_cast<M>((*this)[i]);
        LATTE_CHECK(m != nullptr, "ModuleList: module ", i, " is not of the requested type");
        return m;
    }
    auto begin() const { return items_.begin(); }
    auto end() const { return items_.end(); }

private:
    std::vector<std::shared_ptr<Module>> items_;
};

// Modules applied one after another: forward(x) = m_n(...m_1(x)). Each must have
// forward(const Tensor&) -> Tensor (Linear, MLP, RMSNorm, LayerNorm, Embedding, Sequential, ...).
class Sequential : public Module {
public:
    template <class M>
        requires std::derived_from<M, Module> && requires(const M& m, const Tensor& x) {
            { m.forward(x) } -> std::convertible_to<Tensor>;
        }
    std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
        LATTE_CHECK(module != nullptr, "Sequential::push_back: null module");
        register_module(std::to_string(steps_.size()), module);
        steps_.push_back([m = module.get()](const Tensor& x) { return Tensor(m->forward(x)); });
        holders_.push_back(module);
        return module;
    }
    Tensor forward(const Tensor& x) const {
        Tensor out = x;
        for (const auto& step : steps_) out = step(out);
        return out;
    }
    Tensor operator()(const Tensor& x) const { return forward(x); }
    size_t size() const { return steps_.size(); }

private:
    std::vector<std::function<Tensor(const Tensor&)>> steps_;
    std::vector<std::shared_ptr<Module>> holders_;
};

}  // namespace latte::nn
