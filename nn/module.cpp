#include "nn/module.h"

#include <map>
#include <set>

#include "core/autograd.h"
#include "ops/movement.h"

namespace latte::nn {
namespace {

std::vector<Tensor> tensors_of(const std::vector<std::pair<std::string, Tensor>>& named) {
    std::vector<Tensor> out;
    for (const auto& [_, t] : named) out.push_back(t);
    return out;
}

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "'" : ", '") + name + "'";
    return out;
}

}  // namespace

void Module::check_new_name(const std::string& name, const char* who) const {
    LATTE_CHECK(!name.empty() && name.find('.') == std::string::npos, who, ": name '", name,
                "' must be non-empty and have no '.' (dots join the names of submodules)");
    auto taken = [&name](const auto& entries) {
        for (const auto& entry : entries)
            if (entry.first == name) return true;
        return false;
    };
    LATTE_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), who, ": '", name,
                "' is already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
    check_defined(value, "register_parameter", name.c_str());
    check_new_name(name, "register_parameter");
    LATTE_CHECK(value.is_leaf(), "register_parameter: '", name,
                "' is the result of an op; register a leaf (detach() it, or create it directly)");
    value.requires_grad_(true);
    params_.emplace_back(name, value);
    return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
    check_defined(value, "register_buffer", name.c_str());
    check_new_name(name, "register_buffer");
    LATTE_CHECK(!value.requires_grad(), "register_buffer: '", name,
                "' requires grad; a buffer is not trained (register_parameter trains it)");
    buffers_.emplace_back(name, value);
    return value;
}

const Tensor& Module::param(const std::string& name) const {
    for (const auto& [existing, t] : params_)
        if (existing == name) return t;
    LATTE_FAIL("module: no parameter named '", name, "'");
}

const Tensor& Module::buffer(const std::string& name) const {
    for (const auto& [existing, t] : buffers_)
        if (existing == name) return t;
    LATTE_FAIL("module: no buffer named '", name, "'");
}

void Module::collect(const std::string& prefix, Collect what, std::vector<std::pair<std::string, Tensor>>& out) const {
    if (what != Collect::Buffers)
        for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
    if (what != Collect::Parameters)
        for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
    for (const auto& [name, child] : children_) child->collect(prefix + name + ".", what, out);
}

std::vector<std::pair<std::string, Tensor>> Module::collected(Collect what) const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect("", what, out);
    return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const { return collected(Collect::Parameters); }

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const { return collected(Collect::Buffers); }

std::vector<Tensor> Module::buffers() const { return tensors_of(named_buffers()); }

StateDict Module::state_dict() const {
    StateDict out = collected(Collect::Both);
    for (auto& [_, t] : out) t = t.detach();
    return out;
}

LoadStateDictResult Module::load_state_dict(const StateDict& dict, bool strict) {
    const std::vector<std::pair<std::string, Tensor>> own = collected(Collect::Both);
    std::map<std::string, Tensor> given;
    for (const auto& [name, t] : dict) {
        LATTE_CHECK(given.emplace(name, t).second, "load_state_dict: the dict holds '", name, "' twice");
        check_defined(t, "load_state_dict", name.c_str());
    }
    LoadStateDictResult result;
    std::set<std::string> own_names;
    for (const auto& [name, t] : own) {
        own_names.insert(name);
        auto it = given.find(name);
        if (it == given.end()) {
            result.missing_keys.push_back(name);
            continue;
        }
        LATTE_CHECK(it->second.shape() == t.shape(), "load_state_dict: '", name, "' has shape ",
                    shape_str(it->second.shape()), " in the dict, the module's is ", shape_str(t.shape()));
        LATTE_CHECK((it->second.dtype() == DType::Int64) == (t.dtype() == DType::Int64), "load_state_dict: '", name,
                    "' is ", dtype_name(it->second.dtype()), " in the dict, the module's is ", dtype_name(t.dtype()));
    }
    for (const auto& [name, _] : dict)
        if (!own_names.count(name)) result.unexpected_keys.push_back(name);
    LATTE_CHECK(!strict || (result.missing_keys.empty() && result.unexpected_keys.empty()),
                "load_state_dict: the dict does not match the module",
                result.missing_keys.empty() ? "" : "; missing keys: ", joined(result.missing_keys),
                result.unexpected_keys.empty() ? "" : "; unexpected keys: ", joined(result.unexpected_keys),
                " (pass strict = false to load the names that match)");
    NoGradGuard no_grad;
    for (const auto& [name, t] : own) {
        auto it = given.find(name);
        if (it != given.end()) copy_(t, latte::to(latte::to(it->second, t.device()), t.dtype()));
    }
    return result;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
    std::vector<std::pair<std::string, const Module*>> out{{"", this}};
    for (const auto& [name, child] : children_)
        for (const auto& [sub, module] : child->named_modules()) out.emplace_back(sub.empty() ? name : name + "." + sub, module);
    return out;
}

std::vector<Tensor> Module::parameters() const { return tensors_of(named_parameters()); }

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

void Module::convert_tensors(const std::function<bool(const Tensor&)>& needs,
                                const std::function<Tensor(const Tensor&)>& convert) {
    NoGradGuard no_grad;
    for (Tensor t : tensors_of(collected(Collect::Both))) {
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
    // Like torch: only floating-point tensors change dtype (an int64 buffer stays int64).
    convert_tensors([dtype](const Tensor& t) { return t.dtype() != dtype && t.dtype() != DType::Int64; },
                       [dtype](const Tensor& t) { return latte::to(t, dtype); });
}

void Module::to(Device device) {
    convert_tensors([device](const Tensor& t) { return t.device() != device; },
                       [device](const Tensor& t) { return latte::to(t, device); });
}

Device Module::device() const {
    const auto params = parameters();
    return params.empty() ? Device::cpu() : params.front().device();
}

}  // namespace latte::nn
