// Tensor::str and `out << tensor` (in ops/: a summarised print cuts the tensor with ops).
// PyTorch's layout (numpy's, really). Every value up to kThreshold elements, else the first and
// last kEdge entries of each dim around "..."; one format for all values (integers as "3.", fixed
// with 4 decimals, or scientific when the magnitudes span more than fixed can show); columns
// right-aligned; rows wrapped at kLineWidth.
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <sstream>

#include "core/autograd.h"
#include "core/node.h"
#include "core/tensor.h"
#include "ops/movement.h"

namespace latte {
namespace {

constexpr int64_t kThreshold = 1000, kEdge = 3, kLineWidth = 80;
constexpr int64_t kEllipsis = -1;
const std::string kPrefix = "tensor(";

// The indices of a dim of size n that are printed; kEllipsis stands for the ones left out.
std::vector<int64_t> shown(int64_t n, bool summarize) {
    std::vector<int64_t> out;
    if (summarize && n > 2 * kEdge) {
        for (int64_t i = 0; i < kEdge; ++i) out.push_back(i);
        out.push_back(kEllipsis);
        for (int64_t i = n - kEdge; i < n; ++i) out.push_back(i);
    } else {
        for (int64_t i = 0; i < n; ++i) out.push_back(i);
    }
    return out;
}

// The positions, row-major in `small` (the tensor cut down to what is printed), of the printed
// elements in printing order: a summarised dim of size n keeps 2 * kEdge entries there.
void printed_positions(const Shape& shape, const Shape& small_strides, bool summarize, size_t d, int64_t base,
                       std::vector<int64_t>& out) {
    if (d == shape.size()) {
        out.push_back(base);
        return;
    }
    const int64_t n = shape[d], cut = summarize && n > 2 * kEdge ? n - 2 * kEdge : 0;
    for (int64_t i : shown(n, summarize)) {
        if (i == kEllipsis) continue;
        const int64_t in_small = i < kEdge || cut == 0 ? i : i - cut;
        printed_positions(shape, small_strides, summarize, d + 1, base + in_small * small_strides[d], out);
    }
}

// The first and last kEdge entries of every long dim: the only values a summarised print reads,
// so printing a large tensor copies a few hundred numbers, not the whole tensor.
Tensor printed_part(const Tensor& t) {
    NoGradGuard no_grad;
    Tensor small = t.detach();
    for (int64_t d = 0; d < small.dim(); ++d) {
        const int64_t n = small.size(d);
        if (n > 2 * kEdge) small = cat({small.narrow(d, 0, kEdge), small.narrow(d, n - kEdge, kEdge)}, d);
    }
    return small;
}

std::string printf_string(const char* format, double v) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, format, v);
    return buffer;
}

std::vector<std::string> format_floats(const std::vector<double>& values) {
    double max_abs = 0, min_abs = std::numeric_limits<double>::infinity();
    bool integral = true;
    for (double v : values) {
        if (!std::isfinite(v)) continue;
        const double a = std::fabs(v);
        max_abs = std::max(max_abs, a);
        if (a > 0) min_abs = std::min(min_abs, a);
        if (v != std::nearbyint(v)) integral = false;
    }
    const bool has_small = std::isfinite(min_abs);
    const bool scientific = integral ? max_abs > 1e8
                                     : max_abs > 1e8 || (has_small && (min_abs < 1e-4 || max_abs / min_abs > 1e3));
    const char* format = scientific ? "%.4e" : integral ? "%.0f." : "%.4f";
    std::vector<std::string> out;
    out.reserve(values.size());
    for (double v : values) {
        if (std::isnan(v)) out.push_back("nan");
        else if (std::isinf(v)) out.push_back(v > 0 ? "inf" : "-inf");
        else out.push_back(printf_string(format, v));
    }
    return out;
}

class Printer {
public:
    Printer(const Shape& shape, bool summarize, std::vector<std::string> items)
        : shape_(shape), summarize_(summarize), items_(std::move(items)) {
        for (const auto& item : items_) width_ = std::max(width_, static_cast<int64_t>(item.size()));
    }

    void print(std::string& out, size_t d, int64_t indent) {
        if (shape_.empty()) {
            out += items_.at(0);
            return;
        }
        out += "[";
        const std::vector<int64_t> indices = shown(shape_[d], summarize_);
        const bool last = d + 1 == shape_.size();
        const int64_t per_line = std::max<int64_t>(1, (kLineWidth - indent - 1) / (width_ + 2));
        for (size_t k = 0; k < indices.size(); ++k) {
            if (k > 0) {
                out += ",";
                if (last && static_cast<int64_t>(k) % per_line != 0) {
                    out += ' ';
                } else {
                    out.append(last ? 1 : shape_.size() - d - 1, '\n');
                    out.append(static_cast<size_t>(indent + 1), ' ');
                }
            }
            if (indices[k] == kEllipsis) out += last ? " ..." : "...";  // torch's spacing
            else if (last) out += pad(items_.at(next_++));
            else print(out, d + 1, indent + 1);
        }
        out += "]";
    }

private:
    std::string pad(const std::string& item) const {
        std::string out(static_cast<size_t>(width_) - item.size(), ' ');
        return out.append(item);
    }

    const Shape& shape_;
    bool summarize_;
    std::vector<std::string> items_;
    int64_t width_ = 0;
    size_t next_ = 0;
};

}  // namespace

std::string Tensor::str() const {
    if (!defined()) return "tensor(undefined)";
    const bool summarize = numel() > kThreshold;
    const Tensor small = summarize ? printed_part(*this) : *this;
    std::vector<int64_t> positions;
    if (numel() > 0) printed_positions(shape(), contiguous_strides(small.shape()), summarize, 0, 0, positions);
    std::vector<std::string> items;
    if (dtype() == DType::Int64) {
        // Exact integers: through double, values past 2^53 would be rounded.
        const std::vector<int64_t> ints = small.to_vector<int64_t>();
        for (int64_t p : positions) items.push_back(std::to_string(ints[static_cast<size_t>(p)]));
    } else {
        const std::vector<double> all = small.to_vector<double>();
        std::vector<double> values;
        for (int64_t p : positions) values.push_back(all[static_cast<size_t>(p)]);
        items = format_floats(values);
    }
    std::string out = kPrefix;
    if (numel() == 0) out += "[]";
    else Printer(shape(), summarize, std::move(items)).print(out, 0, static_cast<int64_t>(kPrefix.size()));
    std::ostringstream suffix;
    suffix << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
    if (grad_fn()) suffix << ", grad_fn=" << grad_fn()->name();
    else if (requires_grad()) suffix << ", requires_grad=true";
    return out + suffix.str() + ")";
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

}  // namespace latte
