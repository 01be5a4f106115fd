// Tensor: a cheap handle to a strided view of a Storage, plus autograd metadata.
// Copies of a Tensor share everything (like torch.Tensor); views share the storage only.
// Ops are free functions in ops/ (latte::matmul(a, b), a + b, ...); this class holds data access,
// metadata and the autograd entry points.
#pragma once
#include <concepts>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
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

// Tensor::index's entries, as in LibTorch's torch::indexing: x.index({0, Slice(1, 3)}) is
// Python's x[0, 1:3], and Ellipsis stands for every dim not named.
namespace indexing {
inline constexpr std::nullopt_t None = std::nullopt;
struct EllipsisIndex {};
inline constexpr EllipsisIndex Ellipsis{};
// start:end:step with Python's rules (negative bounds count from the end, out-of-range bounds
// clamp); None for a bound means the dim's start or end. The step must be positive.
struct Slice {
    std::optional<int64_t> start, end;
    int64_t step = 1;
    Slice(std::optional<int64_t> start_ = None, std::optional<int64_t> end_ = None, int64_t step_ = 1)
        : start(start_), end(end_), step(step_) {}
};
// An integer (selects one element of its dim and drops the dim), a Slice, or Ellipsis.
struct TensorIndex {
    enum class Kind { Integer, Slice, Ellipsis } kind;
    int64_t integer = 0;
    Slice slice;
    template <std::integral I>
    TensorIndex(I i) : kind(Kind::Integer), integer(static_cast<int64_t>(i)) {}
    TensorIndex(Slice s) : kind(Kind::Slice), slice(s) {}
    TensorIndex(EllipsisIndex) : kind(Kind::Ellipsis) {}
};
}  // namespace indexing

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
    // As T: float, double or int64_t (exact for an int64 tensor; from a float tensor, the value
    // must be finite and in int64's range).
    template <class T> T item() const;

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

    // ---- shorthands for the free functions in ops/: x.sum() is latte::sum(x) ----
    const Shape& sizes() const { return shape(); }  // refers into the tensor: keep the tensor alive
    Tensor sum() const;
    Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
    Tensor mean() const;
    Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;
    Tensor max() const;
    Tensor amax(int64_t dim, bool keepdim = false) const;
    Tensor argmax(int64_t dim, bool keepdim = false) const;
    Tensor abs() const;
    Tensor exp() const;
    Tensor log() const;
    Tensor sqrt() const;
    Tensor pow(double p) const;
    Tensor relu() const;
    Tensor tanh() const;
    Tensor sigmoid() const;
    Tensor softmax(int64_t dim) const;
    Tensor matmul(const Tensor& other) const;
    Tensor contiguous() const;
    Tensor clone() const;
    Tensor reshape(const Shape& shape) const;
    Tensor view(const Shape& shape) const;
    Tensor flatten() const;
    Tensor transpose(int64_t dim0, int64_t dim1) const;
    Tensor permute(const std::vector<int64_t>& dims) const;
    Tensor unsqueeze(int64_t dim) const;
    Tensor squeeze() const;
    Tensor squeeze(int64_t dim) const;
    Tensor expand(const Shape& shape) const;
    Tensor to(DType dtype) const;
    Tensor to(Device device) const;

    // ---- indexing: views that share storage and carry gradients ----
    Tensor select(int64_t dim, int64_t index) const;  // drops dim (negative index counts from the end)
    Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
    Tensor slice(int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step = 1) const;
    Tensor operator[](int64_t index) const;  // select(0, index), like x[i]
    // Python's x[i, a:b, ...]: x.index({i, Slice(a, b), Ellipsis}).
    Tensor index(const std::vector<indexing::TensorIndex>& indices) const;

    // PyTorch-style text: every value up to 1000 elements (then the first and last 3 of each dim),
    // rows aligned one per line, then shape, dtype and device. Also what `out << tensor` writes.
    std::string str() const;
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
