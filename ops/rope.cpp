#include "ops/rope.h"

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/factory.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/movement.h"

namespace latte {
namespace {

// [x1 c - x2 s, x2 c + x1 s] with x1, x2 the two halves of the last dim.
Tensor rotate(const Tensor& x, const Tensor& c, const Tensor& s) {
    const int64_t half = x.size(-1) / 2;
    const Tensor x1 = narrow(x, -1, 0, half), x2 = narrow(x, -1, half, half);
    return cat({sub(mul(x1, c), mul(x2, s)), add(mul(x2, c), mul(x1, s))}, -1);
}

}  // namespace

// dx = rotate(g, cos, -sin): the inverse rotation
Tensor rope(const Tensor& x, int64_t position_offset, double base) {
    check_floating("rope", x);
    LATTE_CHECK(x.dim() >= 3, "rope: x must be (B, L, H, d) (at least 3-D: L, H, d), got ", shape_str(x.shape()));
    const int64_t length = x.size(-3), d = x.size(-1), half = d / 2;
    LATTE_CHECK(d > 0 && d % 2 == 0, "rope: the last dim of x ", shape_str(x.shape()), " must be even and > 0, got ",
                d);
    LATTE_CHECK(position_offset >= 0, "rope: position_offset must be >= 0, got ", position_offset);
    LATTE_CHECK(std::isfinite(base) && base > 0, "rope: base must be finite and > 0, got ", base);
    std::vector<double> cv(static_cast<size_t>(length * half)), sv(cv.size());
    for (int64_t l = 0; l < length; ++l)
        for (int64_t i = 0; i < half; ++i) {
            const double angle = static_cast<double>(position_offset + l) *
                                 std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(d));
            cv[static_cast<size_t>(l * half + i)] = std::cos(angle);
            sv[static_cast<size_t>(l * half + i)] = std::sin(angle);
        }
    // (L, 1, d/2): broadcast over heads and batch. from_vector converts to x's dtype and device.
    const Tensor c = from_vector(cv, {length, 1, half}, x.options());
    const Tensor s = from_vector(sv, {length, 1, half}, x.options());
    Tensor out;
    {
        NoGradGuard no_grad;
        out = rotate(x.detach(), c, s);
    }
    if (needs_graph({x})) {
        record(
            out, "rope", {x},
            [c, s](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> { return {rotate(g, c, neg(s))}; },
            {c, s});
    }
    return out;
}

}  // namespace latte
