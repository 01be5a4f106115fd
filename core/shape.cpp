#include "core/shape.h"

#include <algorithm>

#include "core/error.h"

namespace latte {

std::string shape_str(const Shape& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) out += ",";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
}

Shape contiguous_strides(const Shape& shape) {
    Shape strides(shape.size());
    int64_t stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        strides[i] = stride;
        stride *= std::max<int64_t>(shape[i], 1);
    }
    return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        const int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
        LATTE_CHECK(sa == sb || sa == 1 || sb == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                    " cannot be broadcast (", sa, " vs ", sb, " at dim ", i, ")");
        out[i] = sa == 1 ? sb : sa;
    }
    return out;
}

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op) {
    const int64_t lo = ndim == 0 ? -1 : -ndim;
    const int64_t hi = ndim == 0 ? 0 : ndim - 1;
    LATTE_CHECK(dim >= lo && dim <= hi, op, ": dim ", dim, " out of range for a tensor of ", ndim,
                " dims");
    return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

}  // namespace latte
