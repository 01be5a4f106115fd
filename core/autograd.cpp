#include "core/autograd.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "core/node.h"

namespace latte {
namespace {

thread_local bool grad_mode = true;
// The callbacks queued by hooks of the backward running on this thread (null when none runs).
thread_local std::vector<std::function<void()>>* backward_callbacks = nullptr;
thread_local uint64_t backward_id = 0;  // of the backward running on this thread; 0: none
std::atomic<uint64_t> backward_count{0};

// Makes `list` the running backward's callback list and gives the backward a new id, restoring
// the outer ones (a backward run inside a hook) when it goes.
class CallbackScope {
public:
    explicit CallbackScope(std::vector<std::function<void()>>& list)
        : previous_(backward_callbacks), previous_id_(backward_id) {
        backward_callbacks = &list;
        backward_id = ++backward_count;
    }
    ~CallbackScope() {
        backward_callbacks = previous_;
        backward_id = previous_id_;
    }
    CallbackScope(const CallbackScope&) = delete;
    CallbackScope& operator=(const CallbackScope&) = delete;

private:
    std::vector<std::function<void()>>* previous_;
    uint64_t previous_id_;
};

void run_post_accumulate_hooks(const AutogradMeta& meta) {
    // A copy: a hook may register or remove hooks.
    const auto hooks = meta.post_accumulate_grad_hooks;
    for (const auto& entry : hooks) entry.second();
}
std::atomic<bool> anomaly_mode{false};

// The index of the first NaN or Inf in t, as "[i, j]", or "" when every element is finite.
std::string first_non_finite(const Tensor& t) {
    const std::vector<double> values = t.to_vector<double>();
    for (size_t flat = 0; flat < values.size(); ++flat) {
        if (std::isfinite(values[flat])) continue;
        Shape index(t.shape().size());
        int64_t rest = static_cast<int64_t>(flat);
        for (size_t d = index.size(); d-- > 0;) {
            index[d] = rest % t.shape()[d];
            rest /= t.shape()[d];
        }
        return detail::concat(values[flat], " at index ", shape_str(index));
    }
    return "";
}

// A fresh contiguous copy, so an accumulated gradient never aliases a tensor someone else holds.
Tensor clone_contiguous(const Tensor& t) {
    Tensor out = Tensor::empty(t.shape(), t.options());
    backend_for(t.device()).copy(out.view(), t.view());
    return out;
}

Tensor add_new(const Tensor& a, const Tensor& b) {
    Tensor out = Tensor::empty(a.shape(), a.options());
    backend_for(a.device()).binary(BinaryOp::Add, out.view(), a.view(), b.view());
    return out;
}

// True when g is a dense tensor of its own storage, with no autograd metadata, and nothing else
// holds it, so a leaf can keep it as its gradient instead of a copy (as PyTorch's AccumulateGrad
// steals it): a step of training then copies no parameter gradient.
bool uniquely_owned(const Tensor& g) {
    const std::shared_ptr<Storage>& storage = g.storage();
    return g.impl_ptr().use_count() == 1 && !g.impl_ptr()->autograd && storage && storage.use_count() == 1 &&
           g.is_contiguous() && g.offset() == 0 &&
           storage->bytes() == static_cast<std::size_t>(g.numel()) * dtype_size(g.dtype());
}

void accumulate_into_grad(AutogradMeta& meta, const Tensor& g) {
    if (!meta.grad) {
        meta.grad = !meta.grad_fn && uniquely_owned(g) ? g.impl_ptr() : clone_contiguous(g).impl_ptr();
        return;
    }
    Tensor existing(meta.grad);
    if (existing.has_internal_overlap()) {
        // A gradient set to an expanded tensor (set_grad): adding in place would add into one
        // element many times, so the sum goes into a new tensor.
        meta.grad = add_new(existing, g).impl_ptr();
        return;
    }
    backend_for(existing.device()).binary(BinaryOp::Add, existing.view(), existing.view(), g.view());
    existing.storage()->bump_version();
}

void check_gradient(const Node& node, size_t i, const Tensor& g) {
    LATTE_CHECK(g.shape() == node.input_shapes[i], "backward of ", node.name(), ": grad for input ", i,
                " has shape ", shape_str(g.shape()), ", expected ", shape_str(node.input_shapes[i]));
    LATTE_CHECK(g.dtype() == node.input_dtypes[i] && g.device() == node.input_devices[i], "backward of ",
                node.name(), ": grad for input ", i, " is ", dtype_name(g.dtype()), " on ", g.device().str(),
                ", expected ", dtype_name(node.input_dtypes[i]), " on ", node.input_devices[i].str());
}

}  // namespace

bool grad_mode_enabled() { return grad_mode; }

void set_detect_anomaly(bool on) { anomaly_mode = on; }
bool detect_anomaly_enabled() { return anomaly_mode; }
DetectAnomalyGuard::DetectAnomalyGuard(bool on) : previous_(anomaly_mode.exchange(on)) {}
DetectAnomalyGuard::~DetectAnomalyGuard() { anomaly_mode = previous_; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

void queue_backward_callback(std::function<void()> fn) {
    LATTE_CHECK(backward_callbacks != nullptr, "queue_backward_callback: no backward is running on this thread "
                "(call it from a hook)");
    backward_callbacks->push_back(std::move(fn));
}

uint64_t running_backward_id() { return backward_id; }

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
    NoGradGuard no_grad;
    std::vector<std::function<void()>> callbacks;
    CallbackScope callback_scope(callbacks);
    AutogradMeta* root_meta = root.autograd_meta().get();
    const bool anomaly = detect_anomaly_enabled();
    if (anomaly) {
        const std::string bad = first_non_finite(grad);
        LATTE_CHECK(bad.empty(), "anomaly: the gradient backward starts from holds ", bad);
    }

    // Count, for every metadata reachable from the root, how many edges lead into it, with an
    // iterative DFS (graphs of deep models would overflow a recursive one).
    std::unordered_map<AutogradMeta*, int> dependencies;
    std::vector<AutogradMeta*> stack{root_meta};
    dependencies[root_meta] = 0;
    while (!stack.empty()) {
        AutogradMeta* meta = stack.back();
        stack.pop_back();
        if (!meta->grad_fn) continue;
        for (const auto& next : meta->grad_fn->next) {
            if (!next) continue;
            auto [it, inserted] = dependencies.try_emplace(next.get(), 0);
            ++it->second;
            if (inserted) stack.push_back(next.get());
        }
    }

    // Process in topological order: a metadata is ready once all its consumers have sent their part.
    std::unordered_map<AutogradMeta*, Tensor> pending;
    pending[root_meta] = grad;
    std::vector<AutogradMeta*> ready{root_meta};
    std::vector<Node*> executed;
    while (!ready.empty()) {
        AutogradMeta* meta = ready.back();
        ready.pop_back();
        Tensor g = std::move(pending[meta]);
        pending.erase(meta);
        if (!meta->grad_fn || meta->retain_grad) accumulate_into_grad(*meta, g);
        if (!meta->grad_fn) {
            run_post_accumulate_hooks(*meta);
            continue;
        }

        Node& node = *meta->grad_fn;
        std::vector<Tensor> grads = node.backward(g);
        executed.push_back(&node);
        LATTE_CHECK(grads.size() == node.next.size(), "backward of ", node.name(), ": returned ", grads.size(),
                    " gradients for ", node.next.size(), " inputs");
        for (size_t i = 0; i < grads.size(); ++i) {
            AutogradMeta* next = node.next[i].get();
            if (!next) continue;
            LATTE_CHECK(grads[i].defined(), "backward of ", node.name(), ": no gradient for input ", i,
                        " which requires one");
            check_gradient(node, i, grads[i]);
            // A leaf converted in place (set_data, Module::to) after this graph was built would
            // get a gradient of its old dtype or device.
            LATTE_CHECK(next->data_generation == node.input_generations[i], "backward of ", node.name(), ": input ", i,
                        " of shape ", shape_str(node.input_shapes[i]),
                        " was converted in place (Module::to or set_data) after this graph was built; "
                        "run the forward again");
            if (anomaly) {
                // The gradient coming in was finite (checked where it was produced), so this node
                // is the first to make a NaN or Inf.
                const std::string bad = first_non_finite(grads[i]);
                LATTE_CHECK(bad.empty(), "anomaly: backward of ", node.name(), " produced a non-finite gradient for its input ",
                            i, " of shape ", shape_str(grads[i].shape()), ": ", bad);
            }
            auto it = pending.find(next);
            if (it == pending.end()) pending.emplace(next, grads[i]);
            else it->second = add_new(it->second, grads[i]);
            if (--dependencies[next] == 0) ready.push_back(next);
        }
    }
    if (!retain_graph)
        for (Node* node : executed) node->release_saved();
    // Callbacks may queue more (index loop: the vector can grow).
    for (size_t i = 0; i < callbacks.size(); ++i) {
        const std::function<void()> fn = std::move(callbacks[i]);
        fn();
    }
}

}  // namespace latte
