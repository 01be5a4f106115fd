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

// [x1 c - x2 s, x2 c + x1 s] with x1, x2 the two halves of the last dim of x (.., L, H, d) and
// c, s (L, 1, d/2); inverse uses -s. One pass on a backend with the kernel (the CPU), else
// composed from narrow, mul, sub, add and cat (seven passes over x with spans of d/2).
Tensor rotate(const Tensor& x, const Tensor& c, const Tensor& s, bool inverse) {
    Backend& backend = backend_for(x.device());
    if (backend.has_fused_rope() && x.numel() > 0) {
        const Tensor xc = contiguous(x);
        const int64_t length = x.size(-3), heads = x.size(-2), d = x.size(-1);
        Tensor out = Tensor::empty(x.shape(), x.options());
        backend.rope_rotate(out.view().data, xc.view().data, c.view().data, s.view().data, x.dtype(),
                            x.numel() / (length * heads * d), length, heads, d, inverse);
        return out;
    }
    const int64_t half = x.size(-1) / 2;
    const Tensor x1 = narrow(x, -1, 0, half), x2 = narrow(x, -1, half, half), sv = inverse ? neg(s) : s;
    return cat({sub(mul(x1, c), mul(x2, sv)), add(mul(x2, c), mul(x1, sv))}, -1);
}

// The interleaved layout (x0 y0 x1 y1 ...) <-> the rotate-half one (x0 x1 ... y0 y1 ...), over
// the last dim; both are differentiable (reshape and transpose).
Tensor deinterleave(const Tensor& x) {
    Shape pairs = x.shape(), halves = x.shape();
    pairs.back() /= 2;
    pairs.push_back(2);
    return reshape(transpose(reshape(x, pairs), -1, -2), halves);
}

Tensor interleave(const Tensor& x) {
    Shape halves = x.shape(), out = x.shape();
    halves.back() /= 2;
    halves.insert(halves.end() - 1, 2);
    return reshape(transpose(reshape(x, halves), -1, -2), out);
}

}  // namespace

std::string rope_pairing_name(RoPEPairing pairing) {
    return pairing == RoPEPairing::Interleaved ? "interleaved" : "rotate_half";
}

RoPEPairing parse_rope_pairing(const std::string& name, const std::string& who) {
    if (name == "rotate_half") return RoPEPairing::RotateHalf;
    if (name == "interleaved") return RoPEPairing::Interleaved;
    LATTE_FAIL(who, ": the RoPE pairing must be rotate_half or interleaved, got '", name, "'");
}

// dx = rotate(g, cos, -sin): the inverse rotation
Tensor rope(const Tensor& x, int64_t position_offset, double base, RoPEPairing pairing) {
    check_floating("rope", x);
    LATTE_CHECK(x.dim() >= 3, "rope: x must be (B, L, H, d) (at least 3-D: L, H, d), got ", shape_str(x.shape()));
    const int64_t length = x.size(-3), d = x.size(-1), half = d / 2;
    LATTE_CHECK(d > 0 && d % 2 == 0, "rope: the last dim of x ", shape_str(x.shape()), " must be even and > 0, got ",
                d);
    LATTE_CHECK(position_offset >= 0, "rope: position_offset must be >= 0, got ", position_offset);
    LATTE_CHECK(std::isfinite(base) && base > 0, "rope: base must be finite and > 0, got ", base);
    // Pair (2i, 2i+1) is pair (i, i + d/2) of the deinterleaved features, at the same angle.
    if (pairing == RoPEPairing::Interleaved)
        return interleave(rope(deinterleave(x), position_offset, base, RoPEPairing::RotateHalf));
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
        out = rotate(x.detach(), c, s, false);
    }
    if (needs_graph({x})) {
        record(
            out, "rope", {x},
            [c, s](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> { return {rotate(g, c, s, true)}; },
            {c, s});
    }
    return out;
}

}  // namespace latte
