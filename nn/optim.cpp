#include "nn/optim.h"

#include <cmath>

#include "ops/ops.h"

namespace latte::nn {
namespace {

// The elements [first, last] of its storage that a view can touch.
std::pair<int64_t, int64_t> extent(const Tensor& t) {
    int64_t last = t.offset();
    for (size_t d = 0; d < t.shape().size(); ++d) last += (t.shape()[d] - 1) * t.strides()[d];
    return {t.offset(), last};
}

// Optimizer state follows its parameter after Module::to: converted (not reset) to the
// parameter's dtype and device.
void follow(Tensor& state, const Tensor& p) {
    if (state.defined() && state.device() != p.device()) state = to(state, p.device());
    if (state.defined() && state.dtype() != p.dtype()) state = to(state, p.dtype());
}

bool overlap(const Tensor& a, const Tensor& b) {
    if (a.storage() != b.storage() || a.numel() == 0 || b.numel() == 0) return false;
    const auto [a0, a1] = extent(a);
    const auto [b0, b1] = extent(b);
    return a0 <= b1 && b0 <= a1;
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
    check_lr(lr, "optimizer");
    for (size_t i = 0; i < params_.size(); ++i) {
        check_defined(params_[i], "optimizer", "parameter");
        LATTE_CHECK(params_[i].is_leaf() && params_[i].requires_grad(), "optimizer: parameter ", i, " ",
                    shape_str(params_[i].shape()), " is not a leaf that requires grad");
        // A parameter listed twice (or two overlapping in memory) would be stepped twice per step.
        for (size_t j = 0; j < i; ++j)
            LATTE_CHECK(!overlap(params_[j], params_[i]), "optimizer: parameter ", i, " ",
                        shape_str(params_[i].shape()), " is the same tensor as parameter ", j,
                        " (or overlaps its memory); list each parameter once");
    }
}

void check_lr(double lr, const std::string& who) {
    LATTE_CHECK(std::isfinite(lr) && lr >= 0.0, who, ": learning rate must be finite and non-negative, got ", lr);
}

void Optimizer::set_lr(double lr) {
    check_lr(lr, kind() + " set_lr");
    lr_ = lr;
}

void Optimizer::zero_grad() {
    for (Tensor& p : params_) p.zero_grad();
}

SGD::SGD(std::vector<Tensor> params, double lr, SGDOptions options)
    : Optimizer(std::move(params), lr), options_(options), momentum_(params_.size()) {
    check_options(options);
}

namespace {

void check_hyperparameter(const char* who, const char* name, double value) {
    LATTE_CHECK(std::isfinite(value) && value >= 0, who, ": ", name, " must be finite and non-negative, got ", value);
}

}  // namespace

void check_options(const SGDOptions& options) {
    check_hyperparameter("SGD", "momentum", options.momentum);
    check_hyperparameter("SGD", "dampening", options.dampening);
    check_hyperparameter("SGD", "weight_decay", options.weight_decay);
    LATTE_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
                "SGD: nesterov needs momentum > 0 and dampening = 0");
}

void SGD::step() {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        Tensor g = p.grad();
        if (!g.defined()) continue;
        if (options_.weight_decay != 0) g = add(g, mul(p, options_.weight_decay));
        if (options_.momentum != 0) {
            Tensor& buf = momentum_[i];
            follow(buf, p);
            buf = buf.defined() ? add(mul(buf, options_.momentum), mul(g, 1 - options_.dampening)) : clone(g);
            g = options_.nesterov ? add(g, mul(buf, options_.momentum)) : buf;
        }
        copy_(p, sub(p, mul(g, lr_)));
    }
}

Adam::Adam(std::vector<Tensor> params, double lr, AdamOptions options, bool decoupled)
    : Optimizer(std::move(params), lr), options_(options), decoupled_(decoupled), param_t_(params_.size(), 0),
      m_(params_.size()), v_(params_.size()) {
    check_options(options);
}

namespace {
std::vector<Tensor> flatten_groups(const std::vector<ParamGroup>& groups) {
    std::vector<Tensor> out;
    for (const ParamGroup& g : groups) out.insert(out.end(), g.params.begin(), g.params.end());
    return out;
}
}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, double lr, AdamOptions options, bool decoupled)
    : Adam(flatten_groups(groups), lr, options, decoupled) {
    grouped_ = true;
    for (size_t g = 0; g < groups.size(); ++g) {
        LATTE_CHECK(std::isfinite(groups[g].weight_decay) && groups[g].weight_decay >= 0, "Adam: group ", g,
                    " weight_decay must be finite and non-negative, got ", groups[g].weight_decay);
        decay_.insert(decay_.end(), groups[g].params.size(), groups[g].weight_decay);
    }
}

double Adam::weight_decay(size_t i) const {
    LATTE_CHECK(i < params_.size(), "Adam::weight_decay: parameter ", i, " out of range (", params_.size(), ")");
    return grouped() ? decay_[i] : options_.weight_decay;
}

int64_t Adam::steps(size_t i) const {
    LATTE_CHECK(i < params_.size(), "Adam::steps: parameter ", i, " out of range (", params_.size(), ")");
    return param_t_[i];
}

void check_options(const AdamOptions& options) {
    LATTE_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                "Adam: betas must be in [0, 1), got ", options.beta1, ", ", options.beta2);
    check_hyperparameter("Adam", "eps", options.eps);
    check_hyperparameter("Adam", "weight_decay", options.weight_decay);
}

void Adam::step() {
    NoGradGuard no_grad;
    ++t_;
    AdamStep step{lr_, options_.beta1, options_.beta2, options_.eps, options_.weight_decay, 0.0, 0.0, decoupled_};
    for (size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        const Tensor g = p.grad();
        if (!g.defined()) continue;
        // The fused kernel reads g as p's dtype: a mismatch (a gradient set by hand) would be read
        // as garbage rather than converted.
        LATTE_CHECK(g.dtype() == p.dtype() && g.device() == p.device() && g.shape() == p.shape(), "Adam: parameter ",
                    i, " is ", dtype_name(p.dtype()), " ", shape_str(p.shape()), " on ", p.device().str(),
                    " but its gradient is ", dtype_name(g.dtype()), " ", shape_str(g.shape()), " on ", g.device().str());
        LATTE_CHECK(p.is_contiguous(), "Adam: parameter ", i, " of shape ", shape_str(p.shape()),
                    " is a non-contiguous view; optimizers update whole contiguous parameters");
        follow(m_[i], p);
        follow(v_[i], p);
        if (!m_[i].defined()) {
            m_[i] = zeros_like(p);
            v_[i] = zeros_like(p);
        }
        // One fused pass per parameter (backends/common/adam_math.h) instead of a dozen ops.
        const Tensor gc = contiguous(g);
        step.weight_decay = weight_decay(i);
        // Bias corrections from this parameter's own count (torch's state['step']): a parameter that
        // had no gradient at some steps has taken fewer of them.
        const auto t = static_cast<double>(++param_t_[i]);
        step.bias1 = 1 - std::pow(options_.beta1, t);
        step.bias2 = 1 - std::pow(options_.beta2, t);
        backend_for(p.device()).adam_step(step, p.dtype(), p.numel(), p.view().data, gc.view().data,
                                          m_[i].view().data, v_[i].view().data);
        p.storage()->bump_version();  // an in-place write: graphs that saved p must not reuse it
    }
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
    LATTE_CHECK(max_norm > 0, "clip_grad_norm_: max_norm must be positive, got ", max_norm);
    NoGradGuard no_grad;
    // Summed on the device, read once: an item() per parameter would stall a GPU's stream each time.
    Tensor total;
    for (const Tensor& p : params) {
        Tensor g = p.grad();
        if (!g.defined()) continue;
        Tensor squares = sum(mul(to(g, DType::Float64), to(g, DType::Float64)));
        total = total.defined() ? add(total, to(squares, total.device())) : squares;
    }
    const double norm = total.defined() ? std::sqrt(total.item()) : 0.0;
    const double scale = max_norm / (norm + 1e-6);
    if (scale < 1)
        for (const Tensor& p : params) {
            Tensor g = p.grad();
            if (g.defined()) copy_(g, mul(g, scale));
        }
    return norm;
}

WarmupCosine::WarmupCosine(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_lr)
    : base_lr_(base_lr), min_lr_(min_lr), warmup_(warmup_steps), total_(total_steps) {
    LATTE_CHECK(warmup_steps >= 0 && total_steps > warmup_steps, "WarmupCosine: need 0 <= warmup (", warmup_steps,
                ") < total (", total_steps, ")");
}

double WarmupCosine::lr_at(int64_t step) const {
    if (step < warmup_) return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
    if (step >= total_) return min_lr_;
    const double progress = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
    return min_lr_ + 0.5 * (base_lr_ - min_lr_) * (1 + std::cos(M_PI * progress));
}

}  // namespace latte::nn
