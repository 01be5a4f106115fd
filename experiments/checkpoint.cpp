#include "experiments/checkpoint.h"

#include <cmath>
#include <set>

#include "core/autograd.h"
#include "core/parse.h"
#include "experiments/resume_flags.h"
#include "nn/serialize.h"
#include "nn/state_text.h"
#include "ops/ops.h"

namespace latte::experiments {
namespace {

const std::string kFormat = "latte.checkpoint", kVersion = "1";

// The keys under `prefix` with the prefix removed.
std::map<std::string, std::string> with_prefix(const std::map<std::string, std::string>& metadata,
                                               const std::string& prefix) {
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : metadata)
        if (key.rfind(prefix, 0) == 0) out[key.substr(prefix.size())] = value;
    return out;
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainCheckpoint& c) {
    LATTE_CHECK(static_cast<int64_t>(c.losses.size()) == c.step, "save_checkpoint: ", c.losses.size(),
                " losses for ", c.step, " steps");
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& [name, t] : c.model) tensors.emplace_back("model." + name, t);
    for (const auto& [name, t] : c.optimizer.tensors) tensors.emplace_back("optimizer." + name, t);
    tensors.emplace_back("losses", from_vector(c.losses, {c.step}, TensorOptions{}.with_dtype(DType::Float64)));
    std::map<std::string, std::string> metadata{
        {kFormat, kVersion},
        {"step", std::to_string(c.step)},
        {"generator.counter", std::to_string(c.data_generator.counter)},
        {"generator.has_spare", nn::state_text::from_bool(c.data_generator.has_spare)},
        {"generator.spare", nn::state_text::from_double(c.data_generator.spare)}};
    for (const auto& [key, value] : c.run_config) metadata["config." + key] = value;
    for (const auto& [key, value] : c.optimizer.metadata) metadata["optimizer." + key] = value;
    for (const auto& [key, value] : c.module_config) metadata["module." + key] = value;
    nn::save_safetensors(path, tensors, metadata);
}

namespace {

void check_format(const std::map<std::string, std::string>& metadata, const std::string& where) {
    auto format = metadata.find(kFormat);
    LATTE_CHECK(format != metadata.end(), where,
                " is not a latte training checkpoint (a --save file holds only weights; --resume needs the "
                "--checkpoint file)");
    LATTE_CHECK(format->second == kVersion, where, " has checkpoint version ", format->second, ", this latte reads ",
                kVersion);
}

}  // namespace

std::map<std::string, std::string> load_checkpoint_flags(const std::string& path, const std::string& command) {
    const nn::SafetensorsHeader header = nn::read_safetensors_header(path);
    check_format(header.metadata, "load_checkpoint: " + path);
    std::map<std::string, std::string> flags = with_prefix(header.metadata, "config.");
    auto module = header.metadata.find("module.module");
    if (!command.empty() && module != header.metadata.end()) {
        const std::string& kind = module->second;
        const bool lm = kind == "decoder_lm", train = kind == "mha" || kind == "gqa" || kind == "mla";
        LATTE_CHECK(command != "train" || !lm, "latte train: cannot resume from ", path, ": it is a latte lm checkpoint "
                    "(module decoder_lm", flags.count("task") ? ", task " + flags.at("task") : std::string(),
                    "): resume it with latte lm --resume ", path);
        LATTE_CHECK(command != "lm" || !train, "latte lm: cannot resume from ", path, ": it is a latte train checkpoint ("
                    "a ", kind, " student of the teacher-student task): resume it with latte train --resume ", path);
    }
    return flags;
}

TrainCheckpoint load_checkpoint(const std::string& path) {
    const nn::SafetensorsFile file = nn::load_safetensors(path);
    const std::string where = "load_checkpoint: " + path;
    check_format(file.metadata, where);
    TrainCheckpoint c;
    c.step = nn::state_text::get_int(file.metadata, "step", where);
    LATTE_CHECK(c.step >= 0, where, ": step is ", c.step);
    c.data_generator.counter = nn::state_text::get_uint(file.metadata, "generator.counter", where);
    c.data_generator.has_spare = nn::state_text::get_bool(file.metadata, "generator.has_spare", where);
    c.data_generator.spare = nn::state_text::get_double(file.metadata, "generator.spare", where);
    // A spare normal deviate is a finite number, and there is none to keep without has_spare.
    LATTE_CHECK(std::isfinite(c.data_generator.spare) && (c.data_generator.has_spare || c.data_generator.spare == 0),
                where, ": generator.spare is ", file.metadata.at("generator.spare"), " with generator.has_spare ",
                file.metadata.at("generator.has_spare"), " (a finite number, 0 without a spare)");
    c.run_config = with_prefix(file.metadata, "config.");
    c.optimizer.metadata = with_prefix(file.metadata, "optimizer.");
    c.module_config = with_prefix(file.metadata, "module.");
    bool has_losses = false;
    for (const auto& [name, t] : file.tensors) {
        // Weights, optimizer buffers and losses: a nan or inf in any of them would be trained on.
        nn::check_finite(t, where + ": tensor '" + name + "'");
        if (name == "losses") {
            LATTE_CHECK(t.shape() == Shape{c.step} && t.dtype() == DType::Float64, where, ": losses is ",
                        shape_str(t.shape()), " ", dtype_name(t.dtype()), ", expected [", c.step, "] float64");
            c.losses = t.to_vector();
            has_losses = true;
            // Squared and cross-entropy errors alike are never negative.
            for (size_t i = 0; i < c.losses.size(); ++i)
                LATTE_CHECK(c.losses[i] >= 0, where, ": losses[", i, "] (step ", i + 1, ") is ", c.losses[i],
                            ", but a training loss is never negative");
        } else if (name.rfind("model.", 0) == 0) {
            c.model.emplace_back(name.substr(6), t);
        } else if (name.rfind("optimizer.", 0) == 0) {
            c.optimizer.tensors.emplace_back(name.substr(10), t);
        } else {
            LATTE_FAIL(where, ": unexpected tensor '", name, "' (expected model.*, optimizer.*, losses)");
        }
    }
    LATTE_CHECK(has_losses, where, ": no 'losses' tensor");
    return c;
}

void load_parameters(nn::Module& module, const TrainCheckpoint& c, const std::string& path, const std::string& who) {
    const std::map<std::string, Tensor> saved(c.model.begin(), c.model.end());
    const auto params = module.named_parameters();
    std::set<std::string> expected;
    for (const auto& [name, p] : params) {
        expected.insert(name);
        auto it = saved.find(name);
        LATTE_CHECK(it != saved.end(), who, ": checkpoint ", path, " has no tensor 'model.", name, "'");
        LATTE_CHECK(it->second.shape() == p.shape() && it->second.dtype() == p.dtype(), "latte train: checkpoint ",
                    path, ": 'model.", name, "' is ", shape_str(it->second.shape()), " ", dtype_name(it->second.dtype()),
                    ", the student's parameter is ", shape_str(p.shape()), " ", dtype_name(p.dtype()));
    }
    for (const auto& [name, _] : c.model)
        LATTE_CHECK(expected.count(name), who, ": checkpoint ", path, " has tensor 'model.", name,
                    "' which the student does not have");
    for (const auto& [name, p] : params)
        nn::check_finite(saved.at(name), who + ": checkpoint " + path + ": tensor 'model." + name + "'");
    NoGradGuard no_grad;
    for (const auto& [name, p] : params) copy_(p, to(saved.at(name), p.device()));
}

namespace {

using Config = std::map<std::string, std::string>;

// m[key], or "(none)" when m has no such key.
std::string entry(const Config& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? std::string("(none)") : it->second;
}

// Every key of a or of b, in order: what two configs are compared over.
std::set<std::string> keys_of_both(const Config& a, const Config& b) {
    std::set<std::string> keys;
    for (const auto& [key, _] : a) keys.insert(key);
    for (const auto& [key, _] : b) keys.insert(key);
    return keys;
}

}  // namespace

void check_resumable(const std::map<std::string, std::string>& saved,
                     const std::map<std::string, std::string>& current, const std::string& path) {
    auto value = [](const Config& m, const std::string& key) {  // an empty flag reads as none too
        const std::string v = entry(m, key);
        return v.empty() ? std::string("(none)") : v;
    };
    // Flags added after older checkpoints were written: those runs had their defaults.
    Config was = saved, now = current;
    for (Config* c : {&was, &now}) c->emplace("precision", "f32");
    for (const std::string& key : keys_of_both(was, now))
        LATTE_CHECK(free_on_resume(key) || value(was, key) == value(now, key),
                    resume_conflict("latte train", path, key, value(was, key), value(now, key)));
}

namespace {

// Adam's moments start at zero: m_t = sum_i (1 - b1) b1^(t-i) g_i and v_t = sum_i (1 - b2) b2^(t-i) g_i^2,
// so by Cauchy-Schwarz m_t^2 <= C_t v_t with C_t = (1 - b1)^2 / (1 - b2) * sum_{k<t} (b1^2 / b2)^k
// (52.9 for betas 0.9, 0.999 and any t). A checkpoint whose exp_avg breaks this bound was not
// written by Adam (an exp_avg of 3e38 beside a small exp_avg_sq would make the next step's update
// overflow). Returns infinity where no finite bound holds (b2 = 0, or b1^2 >= b2 over many steps).
double adam_moment_ratio(double b1, double b2, int64_t t) {
    if (b2 <= 0) return b1 == 0 ? 1.0 : INFINITY;
    const double r = b1 * b1 / b2;
    const double series = r == 0 ? 1.0 : r == 1 ? double(t) : (std::pow(r, double(t)) - 1) / (r - 1);
    return (1 - b1) * (1 - b1) / (1 - b2) * series;
}

void check_adam_moments(const TrainCheckpoint& c, const nn::Optimizer& optimizer, const std::string& at) {
    const auto fresh = optimizer.state_dict().metadata;
    double b1 = 0, b2 = 0;
    if (!parse_double(entry(fresh, "beta1"), b1) || !parse_double(entry(fresh, "beta2"), b2)) return;
    const double ratio = adam_moment_ratio(b1, b2, std::max<int64_t>(c.step, 1));
    if (!std::isfinite(ratio)) return;
    std::map<std::string, Tensor> buffers(c.optimizer.tensors.begin(), c.optimizer.tensors.end());
    for (const auto& [name, m] : c.optimizer.tensors) {
        if (name.rfind("exp_avg.", 0) != 0) continue;
        const std::string sq = "exp_avg_sq." + name.substr(8);
        auto v_it = buffers.find(sq);
        if (v_it == buffers.end() || v_it->second.shape() != m.shape()) continue;  // load_state_dict names these
        NoGradGuard no_grad;
        const std::vector<double> mv = to(m, Device::cpu()).to_vector(), vv = to(v_it->second, Device::cpu()).to_vector();
        for (size_t k = 0; k < mv.size(); ++k) {
            if (vv[k] < 0) continue;  // load_state_dict refuses it, naming it
            // 1% for float32 rounding, and 1e-15 for squares that underflowed to 0 (harmless: the
            // update divides by sqrt(v) + eps).
            const double limit = std::sqrt(1.01 * ratio * std::max(vv[k], 0.0)) + 1e-15;
            LATTE_CHECK(std::fabs(mv[k]) <= limit, at, "its optimizer.", name, " holds ", mv[k], " at index ",
                        nn::index_text(int64_t(k), m.shape()), " where its optimizer.", sq, " holds ", vv[k],
                        ": Adam's moments (betas ", b1, ", ", b2, ") keep |exp_avg| <= sqrt(", ratio,
                        " * exp_avg_sq), here ", limit, ", so this state was not written by Adam");
        }
    }
}

}  // namespace

void check_resumable_optimizer(const TrainCheckpoint& c, const nn::Optimizer& optimizer, bool every_parameter_steps,
                               const std::string& who, const std::string& path) {
    const std::string at = who + ": cannot resume from " + path + ": ";
    const auto& saved = c.optimizer.metadata;
    const nn::OptimizerState fresh = optimizer.state_dict();
    auto is_step = [](const std::string& key) { return key == "step" || key.rfind("step.", 0) == 0; };
    for (const auto& [key, ours] : fresh.metadata) {
        if (is_step(key)) continue;
        const std::string theirs = entry(saved, key);
        double a = 0, b = 0;
        const bool same = theirs == ours || (parse_double(theirs, a) && parse_double(ours, b) && a == b);
        LATTE_CHECK(same || key != "lr", at, "its optimizer.lr is ", theirs, ", this run has --lr ", ours,
                    " (a resumed run keeps the run's learning rate)");
        LATTE_CHECK(same, at, "its optimizer.", key, " is ", theirs, ", this run's optimizer has ", ours);
    }
    if (fresh.metadata.count("step")) {  // Adam: the step counts must be the checkpoint's
        auto count = [&](const std::string& key) {
            const std::string text = entry(saved, key);
            int64_t v = 0;
            LATTE_CHECK(parse_int(text, v), at, "its optimizer.", key, " is '", text, "', not an integer");
            return v;
        };
        const int64_t t = count("step");
        LATTE_CHECK(t == c.step, at, "its optimizer.step is ", t, ", but the checkpoint is at step ", c.step);
        for (size_t i = 0; i < optimizer.params().size(); ++i) {
            const std::string key = "step." + std::to_string(i);
            if (!saved.count(key)) continue;  // an older state has the global step alone
            const int64_t ti = count(key);
            LATTE_CHECK(ti <= c.step, at, "its optimizer.", key, " is ", ti, ", more than the checkpoint's step ", c.step);
            LATTE_CHECK(!every_parameter_steps || ti == c.step, at, "its optimizer.", key, " is ", ti,
                        ", but every parameter is updated at every step and the checkpoint is at step ", c.step);
        }
    }
    if (optimizer.kind() == "adam" || optimizer.kind() == "adamw") check_adam_moments(c, optimizer, at);
    if (every_parameter_steps && c.step > 0) {  // every parameter has been updated, so has its buffers
        std::vector<std::string> buffers;
        if (optimizer.kind() == "adam" || optimizer.kind() == "adamw") buffers = {"exp_avg", "exp_avg_sq"};
        double momentum = 0;
        if (optimizer.kind() == "sgd" && parse_double(entry(fresh.metadata, "momentum"), momentum) && momentum != 0)
            buffers = {"momentum_buffer"};
        std::set<std::string> present;
        for (const auto& [name, _] : c.optimizer.tensors) present.insert(name);
        for (size_t i = 0; i < optimizer.params().size(); ++i)
            for (const std::string& b : buffers) {
                const std::string name = b + "." + std::to_string(i);
                LATTE_CHECK(present.count(name), at, "it has no tensor 'optimizer.", name, "' (parameter ", i,
                            "'s optimizer state) at step ", c.step);
            }
    }
}

void check_module_config(const std::map<std::string, std::string>& saved,
                         const std::map<std::string, std::string>& current, const std::string& who,
                         const std::string& path) {
    for (const std::string& key : keys_of_both(saved, current))
        LATTE_CHECK(entry(saved, key) == entry(current, key), who, ": cannot resume from ", path, ": its module.", key,
                    " is ", entry(saved, key), ", the model has ", entry(current, key));
}

}  // namespace latte::experiments
