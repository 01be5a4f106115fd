// Optimizer::state_dict / load_state_dict and each optimizer's hyperparameters as exact text.
#include <algorithm>
#include <cmath>
#include <set>

#include "core/autograd.h"
#include "core/parse.h"
#include "nn/optim.h"
#include "nn/serialize.h"
#include "nn/state_text.h"
#include "ops/ops.h"

namespace latte::nn {

using state_text::from_double;

OptimizerState Optimizer::state_dict() const {
    OptimizerState state;
    state.metadata = hyperparameters();
    state.metadata["kind"] = kind();
    state.metadata["params"] = std::to_string(params_.size());
    state.metadata["lr"] = from_double(lr_);
    NoGradGuard no_grad;
    // buffers() only hands out pointers to the slots; nothing is changed through them here.
    for (const auto& [name, slots] : const_cast<Optimizer*>(this)->buffers())
        for (size_t i = 0; i < slots->size(); ++i)
            if ((*slots)[i].defined()) state.tensors.emplace_back(name + "." + std::to_string(i), clone((*slots)[i]));
    return state;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
    const std::string where = kind() + " load_state_dict";
    const auto& meta = state.metadata;
    const std::string& their_kind = state_text::get(meta, "kind", where);
    LATTE_CHECK(their_kind == kind(), where, ": the state is of a ", their_kind, " optimizer, this one is ", kind());
    const int64_t count = state_text::get_int(meta, "params", where);
    LATTE_CHECK(count == static_cast<int64_t>(params_.size()), where, ": the state is for ", count,
                " parameters, this optimizer has ", params_.size());
    const double lr = state_text::get_double(meta, "lr", where);
    check_lr(lr, where);
    std::set<std::string> known{"kind", "params", "lr"};
    for (const auto& [key, _] : hyperparameters()) known.insert(key);
    for (const auto& [key, _] : meta) LATTE_CHECK(known.count(key), where, ": unexpected metadata entry '", key, "'");

    const Buffers slots = buffers();
    std::string buffer_names;
    for (const auto& [name, _] : slots) buffer_names += (buffer_names.empty() ? "" : ", ") + name;
    std::vector<std::vector<Tensor>> loaded(slots.size(), std::vector<Tensor>(params_.size()));
    NoGradGuard no_grad;
    for (const auto& [name, t] : state.tensors) {
        const size_t dot = name.rfind('.');
        size_t b = 0;
        int64_t index = -1;
        if (dot != std::string::npos) {
            while (b < slots.size() && slots[b].first != name.substr(0, dot)) ++b;
            if (!parse_int(name.substr(dot + 1), index)) index = -1;
        }
        LATTE_CHECK(dot != std::string::npos && b < slots.size() && index >= 0 && index < count, where,
                    ": unexpected tensor '", name, "' (expected <buffer>.<parameter index> with buffer ", buffer_names,
                    " and index below ", count, ")");
        const auto i = static_cast<size_t>(index);
        LATTE_CHECK(!loaded[b][i].defined(), where, ": tensor '", name, "' appears twice");
        check_defined(t, where.c_str(), name.c_str());
        const Tensor& p = params_[i];
        LATTE_CHECK(t.shape() == p.shape(), where, ": tensor '", name, "' has shape ", shape_str(t.shape()),
                    ", parameter ", i, " has shape ", shape_str(p.shape()));
        LATTE_CHECK(t.dtype() == p.dtype(), where, ": tensor '", name, "' is ", dtype_name(t.dtype()), ", parameter ",
                    i, " is ", dtype_name(p.dtype()));
        check_finite(t, where + ": tensor '" + name + "'");
        if (slots[b].first == "exp_avg_sq") {  // a running mean of squares is never negative
            const std::vector<double> v = to(t.detach(), Device::cpu()).to_vector();
            const auto neg = std::find_if(v.begin(), v.end(), [](double x) { return x < 0; });
            LATTE_CHECK(neg == v.end(), where, ": tensor '", name, "' holds ", *neg, " at index ",
                        index_text(neg - v.begin(), t.shape()), " (exp_avg_sq must be non-negative)");
        }
        loaded[b][i] = clone(to(t.detach(), p.device()));  // the optimizer's own contiguous copy
    }
    // The buffers of a parameter are created together (Adam's exp_avg and exp_avg_sq).
    for (size_t i = 0; i < params_.size(); ++i)
        for (size_t b = 1; b < slots.size(); ++b)
            LATTE_CHECK(loaded[b][i].defined() == loaded[0][i].defined(), where, ": ", slots[0].first, ".", i, " is ",
                        loaded[0][i].defined() ? "present" : "missing", " but ", slots[b].first, ".", i, " is ",
                        loaded[b][i].defined() ? "present" : "missing");
    std::vector<bool> has_buffers(params_.size(), false);
    if (!slots.empty())
        for (size_t i = 0; i < params_.size(); ++i) has_buffers[i] = loaded[0][i].defined();
    // The last check; it sets nothing unless all of its entries are valid.
    load_hyperparameters(meta, has_buffers);
    lr_ = lr;
    for (size_t b = 0; b < slots.size(); ++b) *slots[b].second = std::move(loaded[b]);
}

std::map<std::string, std::string> SGD::hyperparameters() const {
    return {{"momentum", from_double(options_.momentum)},
            {"dampening", from_double(options_.dampening)},
            {"weight_decay", from_double(options_.weight_decay)},
            {"nesterov", state_text::from_bool(options_.nesterov)}};
}

void SGD::load_hyperparameters(const std::map<std::string, std::string>& meta, const std::vector<bool>&) {
    const std::string where = kind() + " load_state_dict";
    SGDOptions o;
    o.momentum = state_text::get_double(meta, "momentum", where);
    o.dampening = state_text::get_double(meta, "dampening", where);
    o.weight_decay = state_text::get_double(meta, "weight_decay", where);
    o.nesterov = state_text::get_bool(meta, "nesterov", where);
    check_options(o);
    options_ = o;
}

std::map<std::string, std::string> Adam::hyperparameters() const {
    std::map<std::string, std::string> h{{"beta1", from_double(options_.beta1)},
                                         {"beta2", from_double(options_.beta2)},
                                         {"eps", from_double(options_.eps)},
                                         {"weight_decay", from_double(options_.weight_decay)},
                                         {"step", std::to_string(t_)}};
    for (size_t i = 0; i < param_t_.size(); ++i) h["step." + std::to_string(i)] = std::to_string(param_t_[i]);
    if (grouped_) {
        std::string list;
        for (size_t i = 0; i < decay_.size(); ++i) {
            if (i) list += ",";
            list += from_double(decay_[i]);
        }
        h["param_weight_decay"] = list;
    }
    return h;
}

void Adam::load_hyperparameters(const std::map<std::string, std::string>& meta, const std::vector<bool>& has_buffers) {
    const std::string where = kind() + " load_state_dict";
    AdamOptions o;
    o.beta1 = state_text::get_double(meta, "beta1", where);
    o.beta2 = state_text::get_double(meta, "beta2", where);
    o.eps = state_text::get_double(meta, "eps", where);
    o.weight_decay = state_text::get_double(meta, "weight_decay", where);
    const int64_t t = state_text::get_int(meta, "step", where);
    LATTE_CHECK(t >= 0, where, ": step must be non-negative, got ", t);
    // Each parameter's own count. A state with "step" alone (written before there were per-parameter
    // counts) gives each parameter with buffers that step, and each without none.
    bool per_parameter = false;
    for (size_t i = 0; i < params_.size(); ++i) per_parameter = per_parameter || meta.count("step." + std::to_string(i));
    std::vector<int64_t> param_t(params_.size(), 0);
    for (size_t i = 0; i < params_.size(); ++i) {
        const std::string key = "step." + std::to_string(i);
        if (!per_parameter) {
            LATTE_CHECK(!has_buffers[i] || t > 0, where, ": exp_avg.", i, " is present but step is 0");
            param_t[i] = has_buffers[i] ? t : 0;
            continue;
        }
        param_t[i] = state_text::get_int(meta, key, where);  // all of them, once one is there
        LATTE_CHECK(param_t[i] >= 0, where, ": ", key, " must be non-negative, got ", param_t[i]);
        LATTE_CHECK(param_t[i] <= t, where, ": ", key, " is ", param_t[i], ", more than step ", t,
                    " (a parameter cannot have been updated more often than the optimizer stepped)");
        // A parameter's moments are created at its first update.
        LATTE_CHECK((param_t[i] > 0) == has_buffers[i], where, ": ", key, " is ", param_t[i], " but exp_avg.", i,
                    " is ", has_buffers[i] ? "present" : "missing");
    }
    check_options(o);
    std::vector<double> decay;
    if (grouped_) {  // one finite, non-negative decay per parameter
        const std::string& list = state_text::get(meta, "param_weight_decay", where);
        size_t start = 0;
        while (!list.empty() && start <= list.size()) {
            const size_t comma = std::min(list.find(',', start), list.size());
            double value = 0;
            const std::string item = list.substr(start, comma - start);
            LATTE_CHECK(parse_double(item, value) && std::isfinite(value) && value >= 0, where,
                        ": param_weight_decay entry ", decay.size(), " '", item,
                        "' is not a finite non-negative number");
            decay.push_back(value);
            start = comma + 1;
        }
        LATTE_CHECK(decay.size() == params_.size(), where, ": param_weight_decay has ", decay.size(),
                    " entries, this optimizer has ", params_.size(), " parameters");
    }
    options_ = o;
    t_ = t;
    param_t_ = std::move(param_t);
    if (grouped_) decay_ = std::move(decay);
}

}  // namespace latte::nn
