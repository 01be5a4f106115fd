// Shapes and strides as int64 vectors, with the helpers every op needs.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace latte {

// A std::vector<int64_t> in latte's namespace, so `std::cout << x.shape()` finds its operator<<.
// Converts both ways with std::vector<int64_t>.
struct Shape : std::vector<int64_t> {
    using std::vector<int64_t>::vector;
    Shape() = default;
    Shape(const std::vector<int64_t>& v) : std::vector<int64_t>(v) {}
    Shape(std::vector<int64_t>&& v) : std::vector<int64_t>(std::move(v)) {}
};

std::ostream& operator<<(std::ostream& out, const Shape& shape);  // "[2,3]", as shape_str

std::string shape_str(const Shape& shape);          // "[2,3]"
int64_t shape_numel(const Shape& shape);            // product of sizes, 1 for a scalar
// Overflow-checked products for sizes that come from outside (files, flags): throw latte::Error
// "<what>: a * b overflows int64" instead of wrapping. checked_numel also refuses negative sizes.
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);
int64_t checked_numel(const Shape& shape, const std::string& what);
Shape contiguous_strides(const Shape& shape);       // row-major strides in elements
// Strides that show memory laid out as (shape, strides) in `new_shape` without copying, when
// that exists (splitting or merging dims whose elements are evenly spaced); false otherwise.
bool view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape, Shape& new_strides);
// NumPy broadcasting of two shapes; `op` names the caller in the error message.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Maps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace latte
