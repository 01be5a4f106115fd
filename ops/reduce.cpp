#include "ops/reduce.h"

#include <algorithm>
#include <cmath>

#include "core/node.h"
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
    check_defined(x, op, "x");
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

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
    const ReducePlan p = plan_reduce("max", x, {dim}, keepdim);
    LATTE_CHECK(p.count > 0 || x.dim() == 0, "max: reducing an empty dim of shape ", shape_str(x.shape()));
    Tensor kept = p.dims.empty() ? clone(x.detach()) : reduce_raw(ReduceOp::Max, x, p);
    Tensor out = kept.as_strided(p.out_shape, contiguous_strides(p.out_shape), 0);
    if (needs_graph({x})) {
        // dx = dy * (x == max) / count(x == max): ties share the gradient.
        const Shape keep = p.keep_shape, in_shape = x.shape();
        const std::vector<int64_t> dims = p.dims;
        Tensor xs = x.detach();
        record(out, "max", {x}, [keep, in_shape, dims, xs, kept](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            Tensor mask = eq(xs, expand(kept, in_shape));
            Tensor ties = sum(mask, dims, true);
            return {mul(expand(div(reshape(g, keep), ties), in_shape), mask)};
        });
    }
    return out;
}

Tensor max(const Tensor& x) {
    check_defined(x, "max", "x");
    LATTE_CHECK(x.numel() > 0, "max: empty tensor of shape ", shape_str(x.shape()));
    return max(reshape(x, {-1}), 0, false);
}

}  // namespace latte
