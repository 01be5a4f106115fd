#include "core/tensor.h"

#include <atomic>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/autograd.h"
#include "core/node.h"

namespace latte {

Tensor Tensor::empty(const Shape& shape, const TensorOptions& options) {
    // A wrapped element or byte count would allocate a small storage for a huge shape.
    const int64_t numel = checked_numel(shape, "empty");
    LATTE_CHECK(numel <= std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dtype_size(options.dtype)),
                "empty: shape ", shape_str(shape), " of ", dtype_name(options.dtype), " needs more than 2^63 bytes");
    auto impl = std::make_shared<TensorImpl>();
    const std::size_t bytes = static_cast<std::size_t>(numel) * dtype_size(options.dtype);
    impl->storage = std::make_shared<Storage>(bytes, options.device);
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = options.dtype;
    Tensor t(std::move(impl));
    if (options.requires_grad) t.requires_grad_(true);
    return t;
}

bool Tensor::has_internal_overlap() const {
    for (size_t i = 0; i < shape().size(); ++i)
        if (strides()[i] == 0 && shape()[i] > 1) return true;
    return false;
}

int64_t Tensor::size(int64_t d) const {
    // normalize_dim lets dim 0 and -1 through for a 0-d tensor (as reductions want): it has no sizes.
    LATTE_CHECK(dim() > 0, "size: a 0-d tensor has no dim ", d);
    return shape()[normalize_dim(d, dim(), "size")];
}

bool Tensor::is_contiguous() const {
    int64_t expected = 1;
    for (size_t i = shape().size(); i-- > 0;) {
        if (shape()[i] == 1) continue;
        if (strides()[i] != expected) return false;
        expected *= shape()[i];
    }
    return true;
}

View Tensor::view() const {
    const TensorImpl& t = impl();
    char* base = static_cast<char*>(t.storage->data());
    return View{base + t.offset * static_cast<int64_t>(dtype_size(t.dtype)), t.shape, t.strides, t.dtype};
}

template <class T>
T* Tensor::data_ptr() const {
    LATTE_CHECK(device().is_cpu(), "data_ptr: tensor is on ", device().str(), ", not the cpu");
    constexpr DType want = dtype_of<T>();
    LATTE_CHECK(dtype() == want, "data_ptr: tensor is ", dtype_name(dtype()), ", asked for ", dtype_name(want));
    return static_cast<T*>(view().data);
}
template float* Tensor::data_ptr<float>() const;
template double* Tensor::data_ptr<double>() const;
template int64_t* Tensor::data_ptr<int64_t>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
    constexpr DType want = dtype_of<T>();
    // Gather into a contiguous host tensor of the wanted dtype through the backend copy kernel.
    Tensor dense = Tensor::empty(shape(), TensorOptions{}.with_dtype(want).with_device(device()));
    backend_for(device()).copy(dense.view(), view());
    std::vector<T> out(static_cast<size_t>(numel()));
    if (!out.empty()) backend_for(device()).copy_to_host(out.data(), dense.view().data, out.size() * sizeof(T));
    return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

template <class T>
T Tensor::item() const {
    LATTE_CHECK(numel() == 1, "item: tensor of shape ", shape_str(shape()), " has ", numel(),
                " elements, expected exactly 1");
    if constexpr (std::is_same_v<T, int64_t>) {
        if (dtype() != DType::Int64) {
            // A float outside int64's range (or nan) has no int64 value: converting it is undefined.
            const double v = to_vector<double>()[0];
            LATTE_CHECK(std::isfinite(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0,
                        "item<int64_t>: the value ", v, " is not in int64's range");
            return static_cast<int64_t>(v);
        }
    }
    return to_vector<T>()[0];
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int64_t Tensor::item<int64_t>() const;

double Tensor::item() const { return item<double>(); }

Tensor Tensor::detach() const {
    const TensorImpl& t = impl();
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = t.storage;
    impl->shape = t.shape;
    impl->strides = t.strides;
    impl->offset = t.offset;
    impl->dtype = t.dtype;
    return Tensor(std::move(impl));
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
    // The view must stay inside the storage: a bad geometry would read or write past its end.
    LATTE_CHECK(shape.size() == strides.size() && offset >= 0, "as_strided: shape ", shape_str(shape),
                " with strides ", shape_str(strides), " at offset ", offset, " (need one stride per dim, offset >= 0)");
    const int64_t elements = static_cast<int64_t>(storage()->bytes() / dtype_size(dtype()));
    int64_t last = offset, numel = 1;  // index of the last element reached
    for (size_t i = 0; i < shape.size(); ++i) {
        LATTE_CHECK(shape[i] >= 0 && strides[i] >= 0, "as_strided: negative size or stride in shape ",
                    shape_str(shape), " strides ", shape_str(strides));
        numel = shape[i] == 0 ? 0 : numel;
        if (shape[i] > 0) {
            const int64_t reach = checked_mul(shape[i] - 1, strides[i], "as_strided");
            LATTE_CHECK(!__builtin_add_overflow(last, reach, &last), "as_strided: shape ", shape_str(shape),
                        " with strides ", shape_str(strides), " overflows int64");
        }
    }
    LATTE_CHECK(numel == 0 || last < elements, "as_strided: shape ", shape_str(shape), " with strides ",
                shape_str(strides), " at offset ", offset, " reaches element ", last, " of a storage of ", elements,
                " elements");
    Tensor out = detach();
    out.impl_->shape = shape;
    out.impl_->strides = strides;
    out.impl_->offset = offset;
    return out;
}

void Tensor::set_data(const Tensor& data) {
    check_defined(data, "set_data", "data");
    LATTE_CHECK(is_leaf(), "set_data: only a leaf's data can be replaced (this tensor comes from ", grad_fn()->name(),
                ")");
    LATTE_CHECK(!data.requires_grad(), "set_data: the new data of shape ", shape_str(data.shape()),
                " requires grad; pass data.detach()");
    LATTE_CHECK(data.shape() == shape(), "set_data: new data of shape ", shape_str(data.shape()),
                " for a tensor of shape ", shape_str(shape()));
    TensorImpl& t = impl();
    const TensorImpl& d = *data.impl_;
    const Tensor g = grad();
    // (The message is built only on failure, when g is defined.)
    LATTE_CHECK(!g.defined() || (g.dtype() == d.dtype && g.device() == d.storage->device()),
                "set_data: the tensor's gradient is ", dtype_name(g.dtype()), " on ", g.device().str(),
                " but the new data is ", dtype_name(d.dtype), " on ", d.storage->device().str(),
                "; convert the gradient or drop it first");
    if (t.autograd) ++t.autograd->data_generation;
    t.storage = d.storage;
    t.shape = d.shape;
    t.strides = d.strides;
    t.offset = d.offset;
    t.dtype = d.dtype;
}

std::shared_ptr<AutogradMeta>& Tensor::autograd_meta() const {
    TensorImpl& t = impl();
    if (!t.autograd) t.autograd = std::make_shared<AutogradMeta>();
    return t.autograd;
}

Tensor& Tensor::requires_grad_(bool value) {
    LATTE_CHECK(!value || dtype() != DType::Int64, "requires_grad_: only floating-point tensors can require "
                "gradients, got int64 ", shape_str(shape()));
    LATTE_CHECK(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (this one comes from ",
                grad_fn()->name(), "); use detach() first");
    autograd_meta()->requires_grad = value;
    return *this;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
    static const std::shared_ptr<Node> none;
    return impl().autograd ? impl().autograd->grad_fn : none;
}

Tensor& Tensor::retain_grad() {
    LATTE_CHECK(requires_grad(), "retain_grad: tensor does not require grad");
    autograd_meta()->retain_grad = true;
    return *this;
}

Tensor Tensor::grad() const {
    const auto& meta = impl().autograd;
    return meta && meta->grad ? Tensor(meta->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
    if (!grad.defined()) {
        if (impl().autograd) impl().autograd->grad.reset();
        return;
    }
    LATTE_CHECK(grad.shape() == shape() && grad.dtype() == dtype() && grad.device() == device(),
                "set_grad: gradient ", shape_str(grad.shape()), " ", dtype_name(grad.dtype()), " on ",
                grad.device().str(), " does not match tensor ", shape_str(shape()), " ", dtype_name(dtype()),
                " on ", device().str());
    autograd_meta()->grad = grad.detach().impl_;
}

void Tensor::zero_grad() {
    if (impl().autograd) impl().autograd->grad.reset();
}

uint64_t Tensor::register_post_accumulate_grad_hook(std::function<void()> hook) {
    LATTE_CHECK(is_leaf() && requires_grad(), "register_post_accumulate_grad_hook: the tensor of shape ",
                shape_str(shape()), " is not a leaf that requires grad");
    LATTE_CHECK(hook != nullptr, "register_post_accumulate_grad_hook: empty hook");
    static std::atomic<uint64_t> next_handle{1};
    const uint64_t handle = next_handle++;
    autograd_meta()->post_accumulate_grad_hooks.emplace_back(handle, std::move(hook));
    return handle;
}

void Tensor::remove_post_accumulate_grad_hook(uint64_t handle) {
    if (!impl().autograd) return;
    auto& hooks = impl().autograd->post_accumulate_grad_hooks;
    std::erase_if(hooks, [&](const auto& entry) { return entry.first == handle; });
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
    LATTE_CHECK(requires_grad(), "backward: tensor of shape ", shape_str(shape()),
                " does not require grad and has no grad_fn");
    Tensor seed = grad;
    if (!seed.defined()) {
        LATTE_CHECK(numel() == 1, "backward: grad can be implicitly created only for one-element outputs; ",
                    "this output has shape ", shape_str(shape()), ", pass a gradient of that shape");
        seed = Tensor::empty(shape(), options());
        backend_for(device()).fill(seed.view(), 1.0);
    }
    LATTE_CHECK(seed.shape() == shape(), "backward: gradient has shape ", shape_str(seed.shape()),
                ", output has shape ", shape_str(shape()));
    LATTE_CHECK(seed.dtype() == dtype() && seed.device() == device(), "backward: gradient is ",
                dtype_name(seed.dtype()), " on ", seed.device().str(), ", output is ", dtype_name(dtype()), " on ",
                device().str());
    run_backward(*this, seed, retain_graph);
}

void check_defined(const Tensor& t, const char* op, const char* arg) {
    LATTE_CHECK(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
}

}  // namespace latte
