// Tensor's member shorthands (core/tensor.h): each is the free function of the same name in ops/.
// Calls are qualified with latte:: because inside a member the member's own name hides them.
#include <limits>

#include "core/tensor.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/movement.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

namespace latte {

Tensor Tensor::sum() const { return latte::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return latte::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return latte::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return latte::mean(*this, dims, keepdim); }
Tensor Tensor::max() const { return latte::max(*this); }
Tensor Tensor::amax(int64_t dim, bool keepdim) const { return latte::amax(*this, dim, keepdim); }
Tensor Tensor::argmax(int64_t dim, bool keepdim) const { return latte::argmax(*this, dim, keepdim); }
Tensor Tensor::abs() const { return latte::abs(*this); }
Tensor Tensor::exp() const { return latte::exp(*this); }
Tensor Tensor::log() const { return latte::log(*this); }
Tensor Tensor::sqrt() const { return latte::sqrt(*this); }
Tensor Tensor::pow(double p) const { return latte::pow(*this, p); }
Tensor Tensor::relu() const { return latte::relu(*this); }
Tensor Tensor::tanh() const { return latte::tanh(*this); }
Tensor Tensor::sigmoid() const { return latte::sigmoid(*this); }
Tensor Tensor::softmax(int64_t dim) const { return latte::softmax(*this, dim); }
Tensor Tensor::matmul(const Tensor& other) const { return latte::matmul(*this, other); }
Tensor Tensor::contiguous() const { return latte::contiguous(*this); }
Tensor Tensor::clone() const { return latte::clone(*this); }
Tensor Tensor::reshape(const Shape& shape) const { return latte::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return latte::view(*this, shape); }
Tensor Tensor::flatten() const { return latte::flatten(*this); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return latte::transpose(*this, dim0, dim1); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return latte::permute(*this, dims); }
Tensor Tensor::unsqueeze(int64_t dim) const { return latte::unsqueeze(*this, dim); }
Tensor Tensor::squeeze() const { return latte::squeeze(*this); }
Tensor Tensor::squeeze(int64_t dim) const { return latte::squeeze(*this, dim); }
Tensor Tensor::expand(const Shape& shape) const { return latte::expand(*this, shape); }
Tensor Tensor::to(DType dtype) const { return latte::to(*this, dtype); }
Tensor Tensor::to(Device device) const { return latte::to(*this, device); }
Tensor Tensor::select(int64_t dim, int64_t index) const { return latte::select(*this, dim, index); }
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
    return latte::narrow(*this, dim, start, length);
}
Tensor Tensor::operator[](int64_t index) const { return latte::select(*this, 0, index); }

Tensor Tensor::slice(int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) const {
    // An absent bound is the dim's whole extent; latte::slice clamps the extremes to the size.
    return latte::slice(*this, dim, start.value_or(0), end.value_or(std::numeric_limits<int64_t>::max()), step);
}

Tensor Tensor::index(const std::vector<indexing::TensorIndex>& indices) const {
    using Kind = indexing::TensorIndex::Kind;
    int64_t named = 0, ellipses = 0;
    for (const auto& i : indices) {
        if (i.kind == Kind::Ellipsis) ++ellipses;
        else ++named;
    }
    LATTE_CHECK(ellipses <= 1, "index: at most one Ellipsis, got ", ellipses);
    LATTE_CHECK(named <= dim(), "index: ", named, " indices for a tensor of shape ", shape_str(shape()));
    Tensor out = *this;
    int64_t d = 0;  // the dim of `out` the next entry applies to
    for (const auto& i : indices) {
        switch (i.kind) {
            case Kind::Integer: out = out.select(d, i.integer); break;  // the dim goes away
            case Kind::Slice: out = out.slice(d, i.slice.start, i.slice.end, i.slice.step); ++d; break;
            case Kind::Ellipsis: d += dim() - named; break;
        }
    }
    return out;
}

}  // namespace latte
