// Node: one backward record of the graph. Its edges point at the inputs' autograd metadata, not
// their data. Saved tensors live in the closure and are detached, so there are no reference cycles.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor.h"

namespace latte {

class Node {
public:
    // Given the gradient of the output, returns one gradient per input (undefined where
    // needs_input_grad[i] is false). Called with grad mode off.
    using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad, const std::vector<bool>& needs)>;

    Node(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
    // Frees the chain of nodes behind this one iteratively: a long graph freed recursively would
    // overflow the stack.
    ~Node();

    const std::string& name() const { return name_; }
    // Runs the backward function after checking that no saved tensor was written in place since
    // it was saved.
    std::vector<Tensor> backward(const Tensor& grad);
    void release_saved() {
        fn_ = nullptr;
        saved_.clear();
        released_ = true;
    }
    // Remembers `t`'s storage and its current version; backward() refuses to run if it changed.
    void save_version(const Tensor& t);
    bool released() const { return released_; }

    // Filled in by record(): per input, its autograd metadata (null if it needs no gradient),
    // and its shape, dtype and device, against which produced gradients are checked.
    std::vector<std::shared_ptr<AutogradMeta>> next;
    std::vector<Shape> input_shapes;
    std::vector<DType> input_dtypes;
    std::vector<Device> input_devices;
    std::vector<uint64_t> input_generations;  // each input's AutogradMeta::data_generation
    std::vector<bool> needs_input_grad;

private:
    struct SavedVersion {
        std::shared_ptr<Storage> storage;
        uint64_t version;
        Shape shape;
    };
    std::string name_;
    BackwardFn fn_;
    std::vector<SavedVersion> saved_;
    bool released_ = false;
};

// True when grad mode is on and any input requires a gradient.
bool needs_graph(const std::vector<Tensor>& inputs);
// Attaches a backward node named `name` to `output` with `inputs` as its edges. Call only when
// needs_graph(inputs). Saved tensors captured by `fn` must be detached, and listed in `saved`
// (undefined ones are skipped) so that an in-place write to them makes backward fail instead of
// computing with the new values.
void record(Tensor& output, const std::string& name, const std::vector<Tensor>& inputs, Node::BackwardFn fn,
            const std::vector<Tensor>& saved = {});

}  // namespace latte
