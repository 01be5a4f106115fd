#include "ops/activation.h"

#include <cmath>

#include "core/node.h"
#include "ops/checks.h"
#include "ops/elementwise.h"
#include "ops/movement.h"

namespace latte {
namespace {

// out = op(x); backward: g * unary_raw(grad_op, saved), where `saved` is x (from_out false) or
// the output (from_out true). Records `name` with the saved tensor listed.
Tensor pointwise(const char* name, UnaryOp op, UnaryOp grad_op, const Tensor& x, bool from_out, double alpha = 0.0) {
    check_floating(name, x);
    Tensor out = unary_raw(op, x.detach(), alpha);
    if (needs_graph({x})) {
        const Tensor saved = from_out ? out.detach() : x.detach();
        record(
            out, name, {x},
            [saved, grad_op, alpha](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                return {mul(g, unary_raw(grad_op, saved, alpha))};
            },
            {saved});
    }
    return out;
}

}  // namespace

// dx = g * out * (1 - out): sigmoid' written as a composition of the saved output.
Tensor sigmoid(const Tensor& x) {
    check_floating("sigmoid", x);
    Tensor out = unary_raw(UnaryOp::Sigmoid, x.detach());
    if (needs_graph({x})) {
        const Tensor y = out.detach();
        record(
            out, "sigmoid", {x},
            [y](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> { return {mul(g, mul(y, rsub(1.0, y)))}; },
            {y});
    }
    return out;
}

// dx = g * s (1 + x (1 - s)), s = sigmoid(x) (UnaryOp::SiluGrad)
Tensor silu(const Tensor& x) { return pointwise("silu", UnaryOp::Silu, UnaryOp::SiluGrad, x, false); }

// dgate = (g * up) * silu'(gate), dup = g * silu(gate), both in one pass
Tensor swiglu(const Tensor& gate, const Tensor& up) {
    check_same_kind("swiglu", gate, up);
    check_floating("swiglu", gate);
    LATTE_CHECK(gate.shape() == up.shape(), "swiglu: gate ", shape_str(gate.shape()), " and up ",
                shape_str(up.shape()), " must have the same shape");
    Backend& backend = backend_for(gate.device());
    if (!backend.has_fused_swiglu()) return mul(silu(gate), up);
    const Tensor g = contiguous(gate.detach()), u = contiguous(up.detach());
    Tensor out = Tensor::empty(g.shape(), g.options());
    if (out.numel() > 0) backend.swiglu_fwd(out.view().data, g.view().data, u.view().data, g.dtype(), out.numel());
    if (needs_graph({gate, up})) {
        record(
            out, "swiglu", {gate, up},
            [g, u](const Tensor& grad, const std::vector<bool>&) -> std::vector<Tensor> {
                const Tensor gc = contiguous(grad);
                Tensor dgate = Tensor::empty(g.shape(), g.options()), dup = Tensor::empty(u.shape(), u.options());
                if (g.numel() > 0)
                    backend_for(g.device())
                        .swiglu_bwd(dgate.view().data, dup.view().data, gc.view().data, g.view().data, u.view().data,
                                    g.dtype(), g.numel());
                return {dgate, dup};
            },
            {g, u});
    }
    return out;
}

// dx = g * (Phi(x) + x phi(x)) (erf form) or the tanh form's derivative (UnaryOp::Gelu*Grad)
Tensor gelu(const Tensor& x, bool approximate_tanh) {
    return approximate_tanh ? pointwise("gelu", UnaryOp::GeluTanh, UnaryOp::GeluTanhGrad, x, false)
                            : pointwise("gelu", UnaryOp::GeluErf, UnaryOp::GeluErfGrad, x, false);
}

// dx = g * sign(x)
Tensor abs(const Tensor& x) { return pointwise("abs", UnaryOp::Abs, UnaryOp::Sign, x, false); }

// dx = g * (x >= lo) * (x <= hi)
Tensor clamp(const Tensor& x, double lo, double hi) {
    check_floating("clamp", x);
    LATTE_CHECK(!std::isnan(lo) && !std::isnan(hi) && lo <= hi, "clamp: lo ", lo, " must not exceed hi ", hi,
                " (input ", shape_str(x.shape()), ")");
    const Tensor xs = x.detach();
    Tensor out = unary_raw(UnaryOp::MinScalar, unary_raw(UnaryOp::MaxScalar, xs, lo), hi);
    if (needs_graph({x})) {
        record(
            out, "clamp", {x},
            [xs, lo, hi](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                return {mul(g, mul(unary_raw(UnaryOp::GeScalar, xs, lo), unary_raw(UnaryOp::LeScalar, xs, hi)))};
            },
            {xs});
    }
    return out;
}

}  // namespace latte
