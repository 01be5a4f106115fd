// Tensor comparison for tests: on failure the message gives the label, shape, first mismatching
// index, the two values side by side and the largest error.
#pragma once
#include <string>

#include "core/tensor.h"

namespace latte {

struct CompareResult {
    bool ok = false;
    std::string message;
    double max_abs_error = 0.0;
};

// |actual - expected| <= atol + rtol * |expected| elementwise (like torch.allclose); shapes must match.
CompareResult allclose(const Tensor& actual, const Tensor& expected, double rtol, double atol,
                       const std::string& label = "tensor");

}  // namespace latte
