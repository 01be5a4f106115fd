#include "ops/movement.h"

#include <algorithm>
#include <numeric>

#include "core/autograd.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/reduce.h"

namespace latte {
namespace {

// Resolves one -1 in `shape` against numel and checks the element counts agree.
Shape infer_shape(const char* op, const Tensor& x, Shape shape) {
    int64_t known = 1;
    int64_t infer_at = -1;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            LATTE_CHECK(infer_at < 0, op, ": only one size may be -1 in ", shape_str(shape));
            infer_at = static_cast<int64_t>(i);
        } else {
            LATTE_CHECK(shape[i] >= 0, op, ": invalid size ", shape[i], " in ", shape_str(shape));
            known = checked_mul(known, shape[i], std::string(op) + ": shape " + shape_str(shape));
        }
    }
    if (infer_at >= 0) {
        LATTE_CHECK(known != 0 && x.numel() % known == 0, op, ": cannot reshape ", shape_str(x.shape()), " into ",
                    shape_str(shape));
        shape[static_cast<size_t>(infer_at)] = x.numel() / known;
    }
    const int64_t numel = checked_numel(shape, op);  // a wrapped product could match numel by accident
    LATTE_CHECK(numel == x.numel(), op, ": cannot reshape ", shape_str(x.shape()), " (", x.numel(),
                " elements) into ", shape_str(shape), " (", numel, " elements)");
    return shape;
}

// An alias of x's storage with new geometry, recording `name` whose backward is `fn`.
Tensor make_view(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset, const char* name,
                 Node::BackwardFn fn) {
    Tensor out = x.as_strided(shape, strides, offset);
    if (needs_graph({x})) record(out, name, {x}, std::move(fn));
    return out;
}

// Whether a and b are views of one storage whose spans of memory meet (a cheap test: equal
// views or interleaved ones count as meeting too).
bool may_share_elements(const Tensor& a, const Tensor& b) {
    if (a.storage() != b.storage() || a.numel() == 0 || b.numel() == 0) return false;
    auto span = [](const Tensor& t) {
        int64_t last = t.offset();
        for (size_t i = 0; i < t.shape().size(); ++i) last += (t.shape()[i] - 1) * t.strides()[i];
        const auto size = static_cast<int64_t>(dtype_size(t.dtype()));
        return std::pair<int64_t, int64_t>{t.offset() * size, (last + 1) * size};  // bytes [first, end)
    };
    const auto [a0, a1] = span(a);
    const auto [b0, b1] = span(b);
    return a0 < b1 && b0 < a1;
}

Tensor copy_to_new(const Tensor& x, const TensorOptions& options) {
    Tensor out = Tensor::empty(x.shape(), options);
    backend_for(options.device).copy(out.view(), x.view());
    return out;
}

}  // namespace

Tensor view(const Tensor& x, Shape shape) {
    check_defined(x, "view", "x");
    shape = infer_shape("view", x, shape);
    LATTE_CHECK(x.is_contiguous(), "view: input of shape ", shape_str(x.shape()), " with strides ",
                shape_str(x.strides()), " is not contiguous; use reshape() (which copies)");
    const Shape in_shape = x.shape();
    return make_view(x, shape, contiguous_strides(shape), x.offset(), "view",
                     [in_shape](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                         return {reshape(g, in_shape)};
                     });
}

Tensor reshape(const Tensor& x, Shape shape) {
    check_defined(x, "reshape", "x");
    shape = infer_shape("reshape", x, shape);
    if (x.is_contiguous()) return view(x, shape);
    // A strided input (a cache slice, a permuted view) is still viewed when its layout allows.
    Shape strides;
    if (!view_strides(x.shape(), x.strides(), shape, strides)) return view(contiguous(x), shape);
    const Shape in_shape = x.shape();
    return make_view(x, shape, strides, x.offset(), "reshape",
                     [in_shape](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                         return {reshape(g, in_shape)};
                     });
}

Tensor flatten(const Tensor& x) { return reshape(x, {-1}); }

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
    check_defined(x, "permute", "x");
    const int64_t n = x.dim();
    LATTE_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: ", dims.size(), " dims given for a tensor of shape ",
                shape_str(x.shape()));
    std::vector<int64_t> order(dims.size());
    std::vector<bool> seen(dims.size(), false);
    Shape shape(dims.size()), strides(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) {
        const int64_t d = normalize_dim(dims[i], n, "permute");
        LATTE_CHECK(!seen[static_cast<size_t>(d)], "permute: dim ", d, " repeated in ", shape_str(Shape(dims)));
        seen[static_cast<size_t>(d)] = true;
        order[i] = d;
        shape[i] = x.shape()[static_cast<size_t>(d)];
        strides[i] = x.strides()[static_cast<size_t>(d)];
    }
    std::vector<int64_t> inverse(order.size());
    for (size_t i = 0; i < order.size(); ++i) inverse[static_cast<size_t>(order[i])] = static_cast<int64_t>(i);
    return make_view(x, shape, strides, x.offset(), "permute",
                     [inverse](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                         return {permute(g, inverse)};
                     });
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
    check_defined(x, "transpose", "x");
    const int64_t n = x.dim();
    dim0 = normalize_dim(dim0, n, "transpose");
    dim1 = normalize_dim(dim1, n, "transpose");
    std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
    std::iota(order.begin(), order.end(), 0);
    if (n > 0) std::swap(order[static_cast<size_t>(dim0)], order[static_cast<size_t>(dim1)]);
    return permute(x, order);
}

Tensor expand(const Tensor& x, const Shape& shape) {
    check_defined(x, "expand", "x");
    const size_t n = shape.size();
    LATTE_CHECK(n >= x.shape().size(), "expand: cannot expand ", shape_str(x.shape()), " to fewer dims ",
                shape_str(shape));
    const size_t lead = n - x.shape().size();
    Shape out_shape(n), strides(n);
    for (size_t i = 0; i < n; ++i) {
        if (i < lead) {
            LATTE_CHECK(shape[i] >= 0, "expand: invalid size ", shape[i], " for new leading dim in ", shape_str(shape));
            out_shape[i] = shape[i];
            strides[i] = 0;
            continue;
        }
        const int64_t size = x.shape()[i - lead];
        const int64_t want = shape[i] == -1 ? size : shape[i];
        LATTE_CHECK(want >= 0, "expand: invalid size ", shape[i], " at dim ", i, " of ", shape_str(shape),
                    " (sizes are non-negative, or -1 to keep the dim)");
        LATTE_CHECK(want == size || size == 1, "expand: cannot expand ", shape_str(x.shape()), " to ",
                    shape_str(shape), " (size ", size, " at dim ", i - lead, " is not 1)");
        out_shape[i] = want;
        strides[i] = want == size ? x.strides()[i - lead] : 0;
    }
    if (out_shape == x.shape()) return x;
    checked_numel(out_shape, "expand");
    const Shape in_shape = x.shape();
    return make_view(x, out_shape, strides, x.offset(), "expand",
                     [in_shape](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                         return {sum_to(g, in_shape)};
                     });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
    check_defined(x, "unsqueeze", "x");
    const int64_t n = x.dim();
    LATTE_CHECK(dim >= -(n + 1) && dim <= n, "unsqueeze: dim ", dim, " out of range for shape ", shape_str(x.shape()));
    if (dim < 0) dim += n + 1;
    Shape shape = x.shape(), strides = x.strides();
    const int64_t stride = dim < n ? shape[static_cast<size_t>(dim)] * strides[static_cast<size_t>(dim)] : 1;
    shape.insert(shape.begin() + dim, 1);
    strides.insert(strides.begin() + dim, stride);
    const Shape in_shape = x.shape();
    return make_view(x, shape, strides, x.offset(), "unsqueeze",
                     [in_shape](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                         return {reshape(g, in_shape)};
                     });
}

Tensor squeeze(const Tensor& x, int64_t dim) {
    check_defined(x, "squeeze", "x");
    dim = normalize_dim(dim, x.dim(), "squeeze");
    if (x.dim() == 0) return x;
    LATTE_CHECK(x.shape()[static_cast<size_t>(dim)] == 1, "squeeze: dim ", dim, " of shape ", shape_str(x.shape()),
                " has size ", x.shape()[static_cast<size_t>(dim)], ", not 1");
    Shape shape = x.shape(), strides = x.strides();
    shape.erase(shape.begin() + dim);
    strides.erase(strides.begin() + dim);
    const Shape in_shape = x.shape();
    return make_view(x, shape, strides, x.offset(), "squeeze",
                     [in_shape](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                         return {reshape(g, in_shape)};
                     });
}

Tensor squeeze(const Tensor& x) {
    check_defined(x, "squeeze", "x");
    Tensor out = x;
    for (int64_t d = x.dim() - 1; d >= 0; --d)
        if (x.shape()[static_cast<size_t>(d)] == 1) out = squeeze(out, d);
    return out;
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
    check_defined(x, "slice", "x");
    dim = normalize_dim(dim, x.dim(), "slice");
    LATTE_CHECK(x.dim() > 0, "slice: cannot slice a 0-d tensor");
    LATTE_CHECK(step > 0, "slice: step must be positive, got ", step);
    const int64_t size = x.shape()[static_cast<size_t>(dim)];
    auto clamp = [size](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + size : v, 0, size); };
    start = clamp(start);
    end = std::max(clamp(end), start);
    const int64_t length = end > start ? (end - start - 1) / step + 1 : 0;  // no overflow for huge steps
    Shape shape = x.shape(), strides = x.strides();
    shape[static_cast<size_t>(dim)] = length;
    strides[static_cast<size_t>(dim)] *= step;
    const Shape in_shape = x.shape();
    return make_view(x, shape, strides, x.offset() + start * x.strides()[static_cast<size_t>(dim)], "slice",
                     [in_shape, dim, start, step, length](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                         // Scatter g back into zeros at the sliced positions.
                         Tensor dx = Tensor::empty(in_shape, g.options());
                         backend_for(g.device()).fill(dx.view(), 0.0);
                         View target = dx.view();
                         const auto d = static_cast<size_t>(dim);
                         target.data = static_cast<char*>(target.data) +
                                       start * target.strides[d] * static_cast<int64_t>(dtype_size(g.dtype()));
                         target.shape[d] = length;
                         target.strides[d] *= step;
                         backend_for(g.device()).copy(target, g.view());
                         return {dx};
                     });
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
    check_defined(x, "narrow", "x");
    dim = normalize_dim(dim, x.dim(), "narrow");
    const int64_t size = x.dim() ? x.shape()[static_cast<size_t>(dim)] : 0;
    // length <= size - start rather than start + length <= size, which overflows for huge lengths.
    LATTE_CHECK(start >= 0 && length >= 0 && start <= size && length <= size - start, "narrow: start ", start,
                ", length ", length, " is outside dim ", dim, " of shape ", shape_str(x.shape()));
    return slice(x, dim, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
    check_defined(x, "select", "x");
    LATTE_CHECK(x.dim() > 0, "select: cannot index a 0-d tensor");
    dim = normalize_dim(dim, x.dim(), "select");
    const int64_t size = x.shape()[static_cast<size_t>(dim)];
    LATTE_CHECK(index >= -size && index < size, "select: index ", index, " out of range for dim ", dim,
                " of shape ", shape_str(x.shape()));
    if (index < 0) index += size;
    return squeeze(narrow(x, dim, index, 1), dim);
}

Tensor contiguous(const Tensor& x) {
    check_defined(x, "contiguous", "x");
    if (x.is_contiguous()) return x;
    return clone(x);
}

Tensor clone(const Tensor& x) {
    check_defined(x, "clone", "x");
    Tensor out = copy_to_new(x, x.options());
    if (needs_graph({x}))
        record(out, "clone", {x},
               [](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> { return {g}; });
    return out;
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
    LATTE_CHECK(!xs.empty(), "cat: expected a non-empty list of tensors");
    const Tensor& first = xs[0];
    check_defined(first, "cat", "xs[0]");
    LATTE_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated");
    dim = normalize_dim(dim, first.dim(), "cat");
    const auto d = static_cast<size_t>(dim);
    Shape out_shape = first.shape();
    out_shape[d] = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
        check_same_kind("cat", first, xs[i]);
        LATTE_CHECK(xs[i].dim() == first.dim(), "cat: tensor ", i, " has shape ", shape_str(xs[i].shape()),
                    ", expected ", first.dim(), " dims like ", shape_str(first.shape()));
        for (size_t k = 0; k < out_shape.size(); ++k)
            LATTE_CHECK(k == d || xs[i].shape()[k] == first.shape()[k], "cat: tensor ", i, " has shape ",
                        shape_str(xs[i].shape()), ", which differs from ", shape_str(first.shape()),
                        " outside dim ", dim);
        out_shape[d] += xs[i].shape()[d];
    }
    Tensor out = Tensor::empty(out_shape, first.options());
    std::vector<int64_t> sizes;
    int64_t offset = 0;
    for (const Tensor& x : xs) {
        View target = out.view();
        target.data = static_cast<char*>(target.data) +
                      offset * target.strides[d] * static_cast<int64_t>(dtype_size(first.dtype()));
        target.shape[d] = x.shape()[d];
        backend_for(first.device()).copy(target, x.view());
        sizes.push_back(x.shape()[d]);
        offset += x.shape()[d];
    }
    if (needs_graph(xs))
        record(out, "cat", xs, [sizes, dim](const Tensor& g, const std::vector<bool>& needs) {
            std::vector<Tensor> grads(sizes.size());
            int64_t at = 0;
            for (size_t i = 0; i < sizes.size(); ++i) {
                if (needs[i]) grads[i] = contiguous(narrow(g, dim, at, sizes[i]));
                at += sizes[i];
            }
            return grads;
        });
    return out;
}

Tensor repeat(const Tensor& x, const std::vector<int64_t>& repeats) {
    check_defined(x, "repeat", "x");
    LATTE_CHECK(static_cast<int64_t>(repeats.size()) == x.dim(), "repeat: ", repeats.size(),
                " counts for input of shape ", shape_str(x.shape()), " (need one per dim)");
    // (s0, s1, ..) -> (1, s0, 1, s1, ..) -> expand to (n0, s0, n1, s1, ..) -> (n0*s0, n1*s1, ..).
    Shape split, expanded, out;
    for (size_t i = 0; i < repeats.size(); ++i) {
        LATTE_CHECK(repeats[i] >= 0, "repeat: negative count ", repeats[i], " for input of shape ",
                    shape_str(x.shape()));
        split.insert(split.end(), {1, x.shape()[i]});
        expanded.insert(expanded.end(), {repeats[i], x.shape()[i]});
        out.push_back(repeats[i] * x.shape()[i]);
    }
    return reshape(expand(reshape(x, split), expanded), out);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
    LATTE_CHECK(!xs.empty(), "stack: expected a non-empty list of tensors");
    check_defined(xs[0], "stack", "xs[0]");
    const int64_t n = xs[0].dim();
    LATTE_CHECK(dim >= -(n + 1) && dim <= n, "stack: dim ", dim, " out of range for shape ", shape_str(xs[0].shape()));
    if (dim < 0) dim += n + 1;
    std::vector<Tensor> parts;
    for (size_t i = 0; i < xs.size(); ++i) {
        check_same_kind("stack", xs[0], xs[i]);
        LATTE_CHECK(xs[i].shape() == xs[0].shape(), "stack: tensor ", i, " has shape ", shape_str(xs[i].shape()),
                    ", expected ", shape_str(xs[0].shape()));
        parts.push_back(unsqueeze(xs[i], dim));
    }
    return cat(parts, dim);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
    check_defined(x, "sum_to", "x");
    if (x.shape() == shape) return x;
    LATTE_CHECK(shape.size() <= x.shape().size(), "sum_to: cannot sum ", shape_str(x.shape()), " to ",
                shape_str(shape));
    const size_t lead = x.shape().size() - shape.size();
    std::vector<int64_t> dims;
    for (size_t i = 0; i < x.shape().size(); ++i) {
        if (i < lead) {
            dims.push_back(static_cast<int64_t>(i));
            continue;
        }
        const int64_t target = shape[i - lead];
        LATTE_CHECK(target == x.shape()[i] || target == 1, "sum_to: cannot sum ", shape_str(x.shape()), " to ",
                    shape_str(shape));
        if (target == 1 && x.shape()[i] != 1) dims.push_back(static_cast<int64_t>(i));
    }
    Tensor summed = dims.empty() ? x : sum(x, dims, /*keepdim=*/true);
    return reshape(summed, shape);
}

void copy_(const Tensor& dst, const Tensor& src) {
    check_defined(dst, "copy_", "dst");
    check_defined(src, "copy_", "src");
    LATTE_CHECK(dst.device() == src.device(), "copy_: dst is on ", dst.device().str(), ", src on ", src.device().str());
    LATTE_CHECK(!(grad_mode_enabled() && dst.requires_grad()), "copy_: in-place write into ", shape_str(dst.shape()),
                " which requires grad; wrap it in NoGradGuard");
    LATTE_CHECK(!dst.has_internal_overlap(), "copy_: dst ", shape_str(dst.shape()), " with strides ",
                shape_str(dst.strides()), " has elements that share memory (an expanded tensor): write into a "
                "contiguous copy instead");
    Tensor from = expand(src.detach(), dst.shape());
    // Reading elements that the copy itself overwrites (x[1:] = x[:-1], x = x^T) would spread the
    // first values: copy from a snapshot of src when the two may share memory.
    if (may_share_elements(from, dst)) from = copy_to_new(from, from.options());
    backend_for(dst.device()).copy(dst.view(), from.view());
    dst.storage()->bump_version();
}

Tensor to(const Tensor& x, DType dtype) {
    check_defined(x, "to", "x");
    if (x.dtype() == dtype) return x;
    Tensor out = copy_to_new(x, x.options().with_dtype(dtype));
    const DType from = x.dtype();
    if (needs_graph({x}))
        record(out, "to_dtype", {x}, [from](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            return {to(g, from)};
        });
    return out;
}

Tensor to(const Tensor& x, Device device) {
    check_defined(x, "to", "x");
    if (x.device() == device) return x;
    // Stage through the host: a contiguous copy on the source device, then bytes across.
    Tensor dense = contiguous(x.detach());
    Tensor out = Tensor::empty(x.shape(), x.options().with_device(device));
    const size_t bytes = static_cast<size_t>(x.numel()) * dtype_size(x.dtype());
    std::vector<char> host(bytes);
    if (bytes) {
        backend_for(x.device()).copy_to_host(host.data(), dense.view().data, bytes);
        backend_for(device).copy_from_host(out.view().data, host.data(), bytes);
    }
    const Device from = x.device();
    if (needs_graph({x}))
        record(out, "to_device", {x}, [from](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            return {to(g, from)};
        });
    return out;
}

}  // namespace latte
