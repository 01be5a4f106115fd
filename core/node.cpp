#include "core/node.h"

#include "core/autograd.h"

namespace latte {

Node::~Node() {
    std::vector<std::shared_ptr<AutogradMeta>> pending = std::move(next);
    while (!pending.empty()) {
        std::shared_ptr<AutogradMeta> meta = std::move(pending.back());
        pending.pop_back();
        // When we hold the last reference to a metadata and its node, take over the node's edges
        // so that destroying it does not recurse.
        if (meta && meta.use_count() == 1 && meta->grad_fn && meta->grad_fn.use_count() == 1) {
            auto& edges = meta->grad_fn->next;
            for (auto& edge : edges) pending.push_back(std::move(edge));
            edges.clear();
        }
    }
}

void Node::save_version(const Tensor& t) {
    if (t.defined()) saved_.push_back({t.storage(), t.storage()->version(), t.shape()});
}

std::vector<Tensor> Node::backward(const Tensor& grad) {
    LATTE_CHECK(!released_, "backward: trying to backward through the graph a second time (", name_,
                "'s saved tensors were freed); pass retain_graph=true to the first backward");
    for (const SavedVersion& s : saved_)
        LATTE_CHECK(s.storage->version() == s.version, "backward of ", name_, ": a tensor of shape ",
                    shape_str(s.shape), " that it saved was modified by an in-place operation (saved at version ",
                    s.version, ", now version ", s.storage->version(),
                    "); clone it before writing, or write it after backward");
    return fn_(grad, needs_input_grad);
}

bool needs_graph(const std::vector<Tensor>& inputs) {
    if (!grad_mode_enabled()) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

void record(Tensor& output, const std::string& name, const std::vector<Tensor>& inputs, Node::BackwardFn fn,
            const std::vector<Tensor>& saved) {
    auto node = std::make_shared<Node>(name, std::move(fn));
    for (const Tensor& t : saved) node->save_version(t);
    for (const Tensor& t : inputs) {
        const bool needs = t.defined() && t.requires_grad();
        node->next.push_back(needs ? t.autograd_meta() : nullptr);
        node->needs_input_grad.push_back(needs);
        node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
        node->input_dtypes.push_back(t.defined() ? t.dtype() : DType::Float32);
        node->input_devices.push_back(t.defined() ? t.device() : Device::cpu());
        node->input_generations.push_back(needs ? t.autograd_meta()->data_generation : 0);
    }
    auto& meta = output.autograd_meta();
    meta->requires_grad = true;
    meta->grad_fn = std::move(node);
}

}  // namespace latte
