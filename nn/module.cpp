#include "nn/module.h"

#include "core/autograd.h"
#include "ops/movement.h"

namespace latte::nn {

void Module::register_parameter(const std::string& name, Tensor value) {
    check_defined(value, "register_parameter", name.c_str());
    for (const auto& [existing, _] : params_)
        LATTE_CHECK(existing != name, "register_parameter: '", name, "' is already registered");
    value.requires_grad_(true);
    params_.emplace_back(name, std::move(value));
}

const Tensor& Module::param(const std::string& name) const {
    for (const auto& [existing, t] : params_)
        if (existing == name) return t;
    LATTE_FAIL("module: no parameter named '", name, "'");
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
    for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect("", out);
    return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
    std::vector<std::pair<std::string, const Module*>> out{{"", this}};
    for (const auto& [name, child] : children_)
        for (const auto& [sub, module] : child->named_modules()) out.emplace_back(sub.empty() ? name : name + "." + sub, module);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [_, t] : named_parameters()) out.push_back(t);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (const Tensor& t : parameters()) n += t.numel();
    return n;
}

void Module::zero_grad() {
    for (Tensor& t : parameters()) t.zero_grad();
}

void Module::train(bool on) {
    training_ = on;
    for (auto& [_, child] : children_) child->train(on);
}

void Module::convert_parameters(const std::function<bool(const Tensor&)>& needs,
                                const std::function<Tensor(const Tensor&)>& convert) {
    NoGradGuard no_grad;
    for (Tensor t : parameters()) {
        if (!needs(t)) continue;
        // In place, like PyTorch's param.data = ...: the parameter keeps its identity, so
        // optimizers built before the call go on stepping it. Its gradient is converted too.
        const Tensor g = t.grad();
        t.zero_grad();
        t.set_data(convert(t.detach()));
        if (g.defined()) t.set_grad(convert(g));
    }
}

void Module::to(DType dtype) {
    convert_parameters([dtype](const Tensor& t) { return t.dtype() != dtype; },
                       [dtype](const Tensor& t) { return latte::to(t, dtype); });
}

void Module::to(Device device) {
    convert_parameters([device](const Tensor& t) { return t.device() != device; },
                       [device](const Tensor& t) { return latte::to(t, device); });
}

Device Module::device() const {
    const auto params = parameters();
    return params.empty() ? Device::cpu() : params.front().device();
}

}  // namespace latte::nn
