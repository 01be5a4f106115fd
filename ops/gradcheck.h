// gradcheck: compares reverse-mode gradients with central finite differences, like
// torch.autograd.gradcheck, for users' own ops (nn/gradcheck.h has the form for modules).
//
// The loss is sum(f(inputs) * R) with a fixed random R, never sum(f(inputs)): the sum of a
// softmax is constant, so a broken softmax backward would pass a plain sum.
// Inputs' values and .grad are left exactly as they were before the call.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../core/tensor.h"

namespace latte {

struct GradcheckOptions {
    double eps = 1e-6;   // finite-difference step
    double atol = 1e-7;  // |analytic - numeric| <= atol + rtol * |numeric|
    double rtol = 1e-5;
    uint64_t seed = 1234;  // for R
};

struct GradcheckResult {
    bool ok = false;
    std::string message;  // which input, which element, analytic vs numeric
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// `inputs` are float64 leaves; those with requires_grad are checked element by element.
// On failure: "gradcheck: input 0 [2,3], element 4: analytic ... vs numeric ... (diff ...)".
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

// The engine both forms share. A leaf is a tensor and the name errors use ("input 0",
// "W_Q.weight"); `f` recomputes the output from the leaves' current values.
struct GradcheckLeaf {
    std::string name;
    Tensor tensor;
};
struct GradcheckMismatch {
    size_t leaf = 0;       // index into the leaves
    int64_t element = 0;   // row-major flat index
    Shape index;           // the same element as one index per dim
    double analytic = 0, numeric = 0;
};
// The first element whose gradient is off, or nothing when all agree. Throws latte::Error
// (prefixed by `who`) on a leaf that is not a float64 leaf, or when no leaf requires grad.
std::optional<GradcheckMismatch> gradcheck_leaves(const char* who, const std::vector<GradcheckLeaf>& leaves,
                                                  const std::function<Tensor()>& f,
                                                  const GradcheckOptions& options = {});
// The result both forms report: ok, or "gradcheck: <where>: analytic A vs numeric N (diff D)".
GradcheckResult gradcheck_result(const std::optional<GradcheckMismatch>& mismatch, const std::string& where);

}  // namespace latte
