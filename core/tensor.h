// Tensor: a cheap handle to a strided view of a Storage, plus autograd metadata.
// Copies of a Tensor share everything (like torch.Tensor); views share the storage only.
// Ops are free functions in ops/ (latte::matmul(a, b), a + b, ...); this class holds data access,
// metadata and the autograd entry points.
#pragma once
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "backend.h"
#include "device.h"
#include "dtype.h"
#include "error.h"
#include "shape.h"
#include "storage.h"

namespace latte {

class Node;
struct TensorImpl;

// Gradient identity of a tensor, kept apart from its data (as in flashlight): graph edges point
// here, never at the data, so saved tensors can be released independently.
struct AutogradMeta {
    bool requires_grad = false;
    bool retain_grad = false;
    std::shared_ptr<Node> grad_fn;     // null for leaves
    std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves, and non-leaves with retain_grad)
    uint64_t data_generation = 0;      // bumped by set_data: graphs built before refuse to backward
    // Called, in registration order, each time backward has accumulated this leaf's gradient
    // (Tensor::register_post_accumulate_grad_hook); keyed by handle.
    std::vector<std::pair<uint64_t, std::function<void()>>> post_accumulate_grad_hooks;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Shape strides;
    int64_t offset = 0;  // in elements
    DType dtype = DType::Float32;
    std::shared_ptr<AutogradMeta> autograd;  // null until autograd touches the tensor
};

struct TensorOptions {
    DType dtype = DType::Float32;
    Device device = Device::cpu();
    bool requires_grad = false;

    TensorOptions& with_dtype(DType d) { dtype = d; return *this; }
    TensorOptions& with_device(Device d) { device = d; return *this; }
    TensorOptions& with_requires_grad(bool r) { requires_grad = r; return *this; }
};

class Tensor {
public:
    Tensor() = default;  // undefined tensor
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // A new uninitialised contiguous tensor.
    static Tensor empty(const Shape& shape, const TensorOptions& options = {});

    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    const Shape& strides() const { return impl().strides; }
    int64_t offset() const { return impl().offset; }
    int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
    int64_t size(int64_t dim) const;  // negative dims count from the end
    int64_t numel() const { return shape_numel(impl().shape); }
    DType dtype() const { return impl().dtype; }
    Device device() const { return impl().storage->device(); }
    TensorOptions options() const { return TensorOptions{dtype(), device(), false}; }
    bool is_contiguous() const;
    // True when a stride-0 dim of size > 1 (an expand) makes several indices one element: such a
    // tensor cannot be written elementwise.
    bool has_internal_overlap() const;
    const std::shared_ptr<Storage>& storage() const { return impl().storage; }
    TensorImpl* unsafe_impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

    // The raw view a backend kernel sees.
    View view() const;
    // Pointer to the first element on the CPU; throws for other devices or a wrong T.
    template <class T> T* data_ptr() const;

    // Values copied to the host, in row-major order, converted to T (float, double or int64_t).
    template <class T = double> std::vector<T> to_vector() const;
    double item() const;  // the value of a one-element tensor

    // A new tensor with the same view of the same storage and no autograd history.
    Tensor detach() const;
    // Alias with new shape/strides/offset over the same storage (no autograd; ops record it).
    Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;
    // Points this tensor (and every handle sharing it) at `data`'s storage, geometry and dtype,
    // keeping its autograd identity, like PyTorch's `t.data = data`. For leaves only: this is how
    // Module::to converts parameters while optimizers built before keep stepping them. An existing
    // gradient must already match the new dtype and device.
    void set_data(const Tensor& data);

    // ---- autograd ----
    bool requires_grad() const { return impl().autograd && impl().autograd->requires_grad; }
    // Marks a leaf as needing a gradient (like torch's requires_grad_). Throws on a non-leaf.
    Tensor& requires_grad_(bool value = true);
    bool is_leaf() const { return !impl().autograd || !impl().autograd->grad_fn; }
    const std::shared_ptr<Node>& grad_fn() const;
    // Keeps the gradient of a non-leaf after backward (leaves always keep theirs).
    Tensor& retain_grad();
    // The accumulated gradient; undefined before the first backward.
    Tensor grad() const;
    void set_grad(const Tensor& grad);
    void zero_grad();  // drops the gradient (the next backward starts from nothing)
    // Calls `hook` each time a backward has accumulated this leaf's gradient into grad(), like
    // PyTorch's register_post_accumulate_grad_hook (DistributedDataParallel starts a bucket's
    // all-reduce from it). Returns a handle for remove_post_accumulate_grad_hook.
    uint64_t register_post_accumulate_grad_hook(std::function<void()> hook);
    void remove_post_accumulate_grad_hook(uint64_t handle);
    // Reverse-mode differentiation from this tensor. `grad` may be omitted only for one-element
    // tensors. Saved tensors are freed unless retain_graph is true.
    void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

    std::shared_ptr<AutogradMeta>& autograd_meta() const;  // created on first use

    std::string str() const;  // values (abridged), shape and dtype
    bool same_as(const Tensor& other) const { return impl_ == other.impl_; }

private:
    TensorImpl& impl() const {
        LATTE_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
        return *impl_;
    }
    std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// Checks `t` is defined, naming `op` and the argument in the error.
void check_defined(const Tensor& t, const char* op, const char* arg);

}  // namespace latte
