#include "core/shape.h"

#include <algorithm>
#include <ostream>

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

std::ostream& operator<<(std::ostream& out, const Shape& shape) { return out << shape_str(shape); }

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
    int64_t out = 0;
    LATTE_CHECK(!__builtin_mul_overflow(a, b, &out), what, ": ", a, " * ", b, " overflows int64");
    return out;
}

int64_t checked_numel(const Shape& shape, const std::string& what) {
    int64_t n = 1;
    for (int64_t s : shape) {
        LATTE_CHECK(s >= 0, what, ": negative size ", s, " in shape ", shape_str(shape));
        n = checked_mul(n, s, what + ": shape " + shape_str(shape));
    }
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

bool view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape, Shape& new_strides) {
    new_strides.assign(new_shape.size(), 0);
    if (shape.empty() || shape_numel(shape) == 0) {
        new_strides = contiguous_strides(new_shape);
        return true;
    }
    // Walk the old dims from the innermost, in chunks whose elements are evenly spaced; each
    // chunk must be covered exactly by a run of new dims, which then step through it.
    int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
    int64_t base_stride = strides.back();
    int64_t chunk_numel = 1, view_numel = 1;
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
        const auto i = static_cast<size_t>(d);
        chunk_numel *= shape[i];
        const bool chunk_ends = d == 0 || (shape[i - 1] != 1 && strides[i - 1] != chunk_numel * base_stride);
        if (!chunk_ends) continue;
        while (view_d >= 0 && (view_numel < chunk_numel || new_shape[static_cast<size_t>(view_d)] == 1)) {
            new_strides[static_cast<size_t>(view_d)] = view_numel * base_stride;
            view_numel *= new_shape[static_cast<size_t>(view_d)];
            --view_d;
        }
        if (view_numel != chunk_numel) return false;
        if (d > 0) {
            base_stride = strides[i - 1];
            chunk_numel = view_numel = 1;
        }
    }
    return view_d == -1;
}

}  // namespace latte
