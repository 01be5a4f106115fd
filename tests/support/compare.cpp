#include "tests/support/compare.h"

#include <cmath>
#include <sstream>

namespace latte {
namespace {

std::string index_str(int64_t flat, const Shape& shape) {
    Shape index(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return shape_str(index);
}

}  // namespace

CompareResult allclose(const Tensor& actual, const Tensor& expected, double rtol, double atol, const std::string& label) {
    CompareResult result;
    std::ostringstream msg;
    msg.precision(10);
    if (!actual.defined() || !expected.defined()) {
        result.message = label + ": undefined tensor";
        return result;
    }
    if (actual.shape() != expected.shape()) {
        msg << label << ": shape " << shape_str(actual.shape()) << " != expected " << shape_str(expected.shape());
        result.message = msg.str();
        return result;
    }
    const std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
    int64_t first_bad = -1;
    for (size_t i = 0; i < a.size(); ++i) {
        const double err = std::fabs(a[i] - e[i]);
        if (std::isnan(err) || err > result.max_abs_error) result.max_abs_error = std::isnan(err) ? INFINITY : err;
        if (first_bad < 0 && !(err <= atol + rtol * std::fabs(e[i]))) first_bad = static_cast<int64_t>(i);
    }
    result.ok = first_bad < 0;
    msg << label << " " << shape_str(actual.shape()) << ": ";
    if (result.ok) {
        msg << "all close (max abs error " << result.max_abs_error << ")";
    } else {
        const auto i = static_cast<size_t>(first_bad);
        msg << "first mismatch at " << index_str(first_bad, actual.shape()) << ": actual " << a[i] << " vs expected "
            << e[i] << " (rtol " << rtol << ", atol " << atol << "); max abs error " << result.max_abs_error;
    }
    result.message = msg.str();
    return result;
}

}  // namespace latte
