// Optimizers with PyTorch's update rules and defaults, gradient clipping and a learning-rate
// schedule. Parameters are updated in place, so modules see the new values.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.h"

namespace latte::nn {

// An optimizer's state (PyTorch's optimizer.state_dict(), flattened) in the form nn/serialize's
// save_safetensors takes: per-parameter buffers as tensors named "<buffer>.<parameter index>"
// (e.g. "exp_avg.0"; a buffer not yet created is absent), and as exact text the metadata "kind"
// (sgd | adam | adamw), "params" (the parameter count), "lr" and the kind's hyperparameters and counters.
struct OptimizerState {
    std::vector<std::pair<std::string, Tensor>> tensors;
    std::map<std::string, std::string> metadata;
};

// A group of parameters sharing a weight decay, like one of torch's optimizer param_groups
// (see nn/param_groups.h for the usual decay / no-decay split of a module). names is optional.
struct ParamGroup {
    std::vector<Tensor> params;
    double weight_decay = 0.0;
    std::vector<std::string> names;
};

// Throws "<who>: learning rate must be finite and non-negative, got <lr>" unless it is.
void check_lr(double lr, const std::string& who);

class Optimizer {
public:
    explicit Optimizer(std::vector<Tensor> params, double lr);
    virtual ~Optimizer() = default;
    // One update from the parameters' current .grad(); parameters without a gradient are skipped.
    virtual void step() = 0;
    void zero_grad();
    double lr() const { return lr_; }
    void set_lr(double lr);  // finite and >= 0, else throws latte::Error
    const std::vector<Tensor>& params() const { return params_; }

    virtual std::string kind() const = 0;  // "sgd", "adam" or "adamw"
    // A copy of the state: later steps do not change it.
    OptimizerState state_dict() const;
    // Restores a state_dict() of the same kind over the same parameters. The kind, parameter count,
    // buffer names, shapes and dtypes and every metadata entry are checked before anything is
    // changed; a mismatch throws latte::Error naming it. Buffers move to each parameter's device.
    void load_state_dict(const OptimizerState& state);

protected:
    using Buffers = std::vector<std::pair<std::string, std::vector<Tensor>*>>;
    // The per-parameter buffers, one slot per parameter (undefined until first used).
    virtual Buffers buffers() = 0;
    // Hyperparameters and counters as exact text (lr excluded).
    virtual std::map<std::string, std::string> hyperparameters() const = 0;
    // Parses and validates every entry of hyperparameters() from `metadata`, then sets them all
    // (throws before setting any). has_buffers[i]: whether the state holds parameter i's buffers.
    virtual void load_hyperparameters(const std::map<std::string, std::string>& metadata,
                                      const std::vector<bool>& has_buffers) = 0;

    std::vector<Tensor> params_;
    double lr_;
};

// torch.optim.SGD: g += wd p; buf = momentum buf + (1 - dampening) g (buf = g at first);
// g = nesterov ? g + momentum buf : buf; p -= lr g.
struct SGDOptions {
    double momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
    bool nesterov = false;
};
// Throws latte::Error on an invalid combination or a value that is negative or not finite.
void check_options(const SGDOptions& options);
class SGD : public Optimizer {
public:
    SGD(std::vector<Tensor> params, double lr, SGDOptions options = {});
    void step() override;
    std::string kind() const override { return "sgd"; }

protected:
    Buffers buffers() override { return {{"momentum_buffer", &momentum_}}; }
    std::map<std::string, std::string> hyperparameters() const override;
    void load_hyperparameters(const std::map<std::string, std::string>& metadata,
                              const std::vector<bool>& has_buffers) override;

private:
    SGDOptions options_;
    std::vector<Tensor> momentum_;
};

// torch.optim.Adam / AdamW: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
// Adam adds weight decay to the gradient (g += wd p); AdamW decays the weight (p *= 1 - lr wd).
// As in PyTorch, t counts per parameter the steps that updated it: a parameter without a gradient
// at a step is skipped and its t does not advance (its bias correction starts at its first update).
struct AdamOptions {
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};
void check_options(const AdamOptions& options);
class Adam : public Optimizer {
public:
    Adam(std::vector<Tensor> params, double lr = 1e-3, AdamOptions options = {}, bool decoupled = false);
    // Parameter groups: each group's weight_decay replaces options.weight_decay for its parameters
    // (parameters are indexed group after group). state_dict() then also holds
    // "param_weight_decay", the per-parameter decays as comma-separated exact text, and
    // load_state_dict requires it (and a matching one).
    // state_dict() holds "step" (the number of step() calls) and "step.<i>", parameter i's own t.
    // load_state_dict also takes a state with "step" alone (written before per-parameter counts):
    // then each parameter with buffers gets t = step, and each without gets t = 0.
    Adam(std::vector<ParamGroup> groups, double lr = 1e-3, AdamOptions options = {}, bool decoupled = false);
    void step() override;
    int64_t steps() const { return t_; }  // step() calls so far
    int64_t steps(size_t i) const;         // updates of parameter i so far (its t)
    std::string kind() const override { return decoupled_ ? "adamw" : "adam"; }
    // The weight decay applied to parameter i (its group's, or options.weight_decay).
    double weight_decay(size_t i) const;
    bool grouped() const { return grouped_; }

protected:
    Buffers buffers() override { return {{"exp_avg", &m_}, {"exp_avg_sq", &v_}}; }
    std::map<std::string, std::string> hyperparameters() const override;
    void load_hyperparameters(const std::map<std::string, std::string>& metadata,
                              const std::vector<bool>& has_buffers) override;

private:
    AdamOptions options_;
    bool decoupled_;
    int64_t t_ = 0;                   // step() calls
    std::vector<int64_t> param_t_;    // per parameter: the steps that updated it
    bool grouped_ = false;
    std::vector<double> decay_;  // per parameter, with groups only
    std::vector<Tensor> m_, v_;
};

// AdamW with PyTorch's default weight_decay of 0.01.
class AdamW : public Adam {
public:
    AdamW(std::vector<Tensor> params, double lr = 1e-3, AdamOptions options = {0.9, 0.999, 1e-8, 0.01})
        : Adam(std::move(params), lr, options, /*decoupled=*/true) {}
    // Groups (e.g. nn::param_groups(model, 0.1)): each group's weight decay, e.g. 0 for norms,
    // biases and embeddings.
    AdamW(std::vector<ParamGroup> groups, double lr = 1e-3, AdamOptions options = {0.9, 0.999, 1e-8, 0.01})
        : Adam(std::move(groups), lr, options, /*decoupled=*/true) {}
};

// Scales all gradients so their global L2 norm is at most max_norm (torch.nn.utils.clip_grad_norm_);
// returns the norm before clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

// Linear warmup from 0 to base_lr over warmup_steps, then cosine decay to min_lr at total_steps.
class WarmupCosine {
public:
    WarmupCosine(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_lr = 0.0);
    double lr_at(int64_t step) const;  // step counts from 0

private:
    double base_lr_, min_lr_;
    int64_t warmup_, total_;
};

}  // namespace latte::nn
