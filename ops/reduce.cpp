#include "ops/reduce.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/factory.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/movement.h"

namespace latte {
namespace {

struct ReducePlan {
    std::vector<int64_t> dims;  // sorted, unique, non-negative
    Shape keep_shape;           // x's shape with reduced dims set to 1
    Shape out_shape;            // keep_shape, or without the reduced dims
    int64_t count = 1;          // elements reduced into each output
};

ReducePlan plan_reduce(const char* op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    check_floating(op, x);
    ReducePlan p;
    for (int64_t d : dims) p.dims.push_back(normalize_dim(d, x.dim(), op));
    std::sort(p.dims.begin(), p.dims.end());
    LATTE_CHECK(std::adjacent_find(p.dims.begin(), p.dims.end()) == p.dims.end(), op, ": dim repeated in ",
                shape_str(Shape(dims)));
    if (x.dim() == 0) p.dims.clear();
    p.keep_shape = x.shape();
    for (int64_t d : p.dims) {
        p.count *= x.shape()[static_cast<size_t>(d)];
        p.keep_shape[static_cast<size_t>(d)] = 1;
    }
    for (size_t i = 0; i < x.shape().size(); ++i) {
        const bool reduced = std::binary_search(p.dims.begin(), p.dims.end(), static_cast<int64_t>(i));
        if (!reduced || keepdim) p.out_shape.push_back(p.keep_shape[i]);
    }
    return p;
}

// Runs the backend reduction, returning a tensor of keep_shape. When the reduced dims form one
// contiguous block of a contiguous x it reads x in place; otherwise it moves them last first.
Tensor reduce_raw(ReduceOp op, const Tensor& x, const ReducePlan& p) {
    Tensor out = Tensor::empty(p.keep_shape, x.options());
    if (x.numel() == 0 || out.numel() == 0) {
        backend_for(x.device()).fill(out.view(), op == ReduceOp::Sum ? 0.0 : -INFINITY);
        return out;
    }
    const bool block = !p.dims.empty() && p.dims.back() - p.dims.front() + 1 == static_cast<int64_t>(p.dims.size());
    Tensor src = x.detach();
    int64_t outer = 1, inner = 1;
    if (block && x.is_contiguous()) {
        for (int64_t i = 0; i < p.dims.front(); ++i) outer *= x.shape()[static_cast<size_t>(i)];
        for (int64_t i = p.dims.back() + 1; i < x.dim(); ++i) inner *= x.shape()[static_cast<size_t>(i)];
    } else {
        std::vector<int64_t> order;
        for (int64_t i = 0; i < x.dim(); ++i)
            if (!std::binary_search(p.dims.begin(), p.dims.end(), i)) order.push_back(i);
        for (int64_t d : p.dims) order.push_back(d);
        src = contiguous(permute(src, order));
        outer = out.numel();
    }
    backend_for(x.device()).reduce(op, out.view().data, src.view().data, x.dtype(), outer, p.count, inner);
    return out;
}

std::vector<int64_t> all_dims(const Tensor& x) {
    std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
    for (size_t i = 0; i < dims.size(); ++i) dims[i] = static_cast<int64_t>(i);
    return dims;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    const ReducePlan p = plan_reduce("sum", x, dims, keepdim);
    Tensor out = p.dims.empty() ? clone(x.detach()) : reduce_raw(ReduceOp::Sum, x, p);
    out = out.as_strided(p.out_shape, contiguous_strides(p.out_shape), 0);
    if (needs_graph({x})) {
        // dx = expand(dy, x.shape)
        const Shape keep = p.keep_shape, in_shape = x.shape();
        record(out, "sum", {x}, [keep, in_shape](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            return {expand(reshape(g, keep), in_shape)};
        });
    }
    return out;
}

Tensor sum(const Tensor& x) {
    check_defined(x, "sum", "x");
    return sum(x, all_dims(x), false);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    const ReducePlan p = plan_reduce("mean", x, dims, keepdim);
    LATTE_CHECK(p.count > 0, "mean: reducing an empty dim of shape ", shape_str(x.shape()));
    return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(p.count));
}

Tensor mean(const Tensor& x) {
    check_defined(x, "mean", "x");
    return mean(x, all_dims(x), false);
}

Tensor amax(const Tensor& x, int64_t dim, bool keepdim) {
    const ReducePlan p = plan_reduce("amax", x, {dim}, keepdim);
    LATTE_CHECK(p.count > 0 || x.dim() == 0, "amax: reducing an empty dim of shape ", shape_str(x.shape()));
    Tensor kept = p.dims.empty() ? clone(x.detach()) : reduce_raw(ReduceOp::Max, x, p);
    Tensor out = kept.as_strided(p.out_shape, contiguous_strides(p.out_shape), 0);
    if (needs_graph({x})) {
        // dx = dy * (x == max) / count(x == max): ties share the gradient.
        const Shape keep = p.keep_shape, in_shape = x.shape();
        const std::vector<int64_t> dims = p.dims;
        Tensor xs = x.detach();
        record(
            out, "amax", {x},
            [keep, in_shape, dims, xs, kept](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                Tensor mask = eq(xs, expand(kept, in_shape));
                Tensor ties = sum(mask, dims, true);
                return {mul(expand(div(reshape(g, keep), ties), in_shape), mask)};
            },
            {xs, kept});
    }
    return out;
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
    const ReducePlan p = plan_reduce("max", x, {dim}, keepdim);
    LATTE_CHECK(p.count > 0 || x.dim() == 0, "max: reducing an empty dim of shape ", shape_str(x.shape()));
    const bool needs = needs_graph({x});
    NoGradGuard no_grad;
    const Tensor xs = x.detach();
    Tensor kept = p.dims.empty() ? clone(xs) : reduce_raw(ReduceOp::Max, xs, p);
    // The first position holding the maximum (a NaN is the maximum of its row, as in PyTorch):
    // min over the dim of (position where x is the max, else size), in float64 so that positions
    // are exact, built from ops so that every backend computes it.
    const int64_t size = p.dims.empty() ? 1 : x.size(dim);
    Shape pos_shape(static_cast<size_t>(x.dim()), 1);
    if (!p.dims.empty()) pos_shape[static_cast<size_t>(p.dims[0])] = size;
    const TensorOptions f64 = x.options().with_dtype(DType::Float64);
    const Tensor pos = reshape(arange(0, static_cast<double>(size), 1, f64), pos_shape);
    const Tensor k = expand(kept, x.shape());
    const Tensor is_max = add(to(eq(xs, k), DType::Float64),
                              to(mul(rsub(1.0, eq(xs, xs)), rsub(1.0, eq(k, k))), DType::Float64));
    const Tensor candidate = add(mul(is_max, pos), mul(rsub(1.0, is_max), static_cast<double>(size)));
    Tensor first = neg(amax(neg(candidate), p.dims.empty() ? 0 : p.dims[0], true));  // keep_shape
    MaxResult result{kept.as_strided(p.out_shape, contiguous_strides(p.out_shape), 0),
                     reshape(to(first, DType::Int64), p.out_shape)};
    if (needs) {
        // dx = dy at the returned index, 0 elsewhere (as torch.max(x, dim) does, ties included).
        const Tensor one_hot = to(eq(expand(pos, x.shape()), expand(first, x.shape())), x.dtype());
        const Shape keep = p.keep_shape, in_shape = x.shape();
        record(
            result.values, "max", {x},
            [keep, in_shape, one_hot](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                return {mul(expand(reshape(g, keep), in_shape), one_hot)};
            },
            {one_hot});
    }
    return result;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
    const ReducePlan p = plan_reduce("argmax", x, {dim}, keepdim);
    LATTE_CHECK(p.count > 0 || x.dim() == 0, "argmax: reducing an empty dim of shape ", shape_str(x.shape()));
    NoGradGuard no_grad;
    return max(x.detach(), dim, keepdim).indices;
}

Tensor max(const Tensor& x) {
    check_defined(x, "max", "x");
    LATTE_CHECK(x.numel() > 0, "max: empty tensor of shape ", shape_str(x.shape()));
    return amax(reshape(x, {-1}), 0, false);
}

}  // namespace latte
