#include "ops/elementwise.h"

#include "core/factory.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/movement.h"

namespace latte {
namespace {

// Which tensors a backward reads. Only those are kept alive by the graph and version-checked
// (an in-place write to an input that add's backward never reads is no error).
enum Saves : unsigned { kNone = 0, kFirst = 1, kSecond = 2, kOut = 4 };

Tensor saved_if(bool keep, const Tensor& t) { return keep ? t.detach() : Tensor(); }

// Applies `op` to x, recording `name` with backward fn(g, x, y) when x needs a gradient; x (kFirst)
// and y (kOut) are passed only when `saves` names them, undefined otherwise.
template <class Backward>
Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, double alpha, unsigned saves, Backward backward) {
    check_floating(name, x);
    Tensor out = unary_raw(op, x, alpha);
    if (needs_graph({x})) {
        Tensor xs = saved_if(saves & kFirst, x), ys = saved_if(saves & kOut, out);
        record(
            out, name, {x},
            [xs, ys, backward](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                return {backward(g, xs, ys)};
            },
            {xs, ys});
    }
    return out;
}

// Broadcasts a and b through expand() (so broadcasting has one backward: expand's sum_to) and
// applies `op`; backward(g, a, b, out, needs) returns the two same-shape gradients.
template <class Backward>
Tensor binary_op(const char* name, BinaryOp op, const Tensor& a, const Tensor& b, unsigned saves, Backward backward) {
    check_same_kind(name, a, b);
    check_floating(name, a);
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    Tensor ea = expand(a, shape), eb = expand(b, shape);
    Tensor out = Tensor::empty(shape, a.options());
    backend_for(a.device()).binary(op, out.view(), ea.view(), eb.view());
    if (needs_graph({ea, eb})) {
        Tensor as = saved_if(saves & kFirst, ea), bs = saved_if(saves & kSecond, eb), ys = saved_if(saves & kOut, out);
        record(
            out, name, {ea, eb},
            [as, bs, ys, backward](const Tensor& g, const std::vector<bool>& needs) {
                return backward(g, as, bs, ys, needs);
            },
            {as, bs, ys});
    }
    return out;
}

Tensor comparison(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
    check_same_kind(name, a, b);
    check_floating(name, a);
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    Tensor out = Tensor::empty(shape, a.options());
    backend_for(a.device()).binary(op, out.view(), expand(a.detach(), shape).view(), expand(b.detach(), shape).view());
    return out;
}

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

}  // namespace

// da = g, db = g
Tensor add(const Tensor& a, const Tensor& b) {
    return binary_op("add", BinaryOp::Add, a, b, kNone, [](const Tensor& g, const Tensor&, const Tensor&, const Tensor&, const Needs&) {
        return Grads{g, g};
    });
}

// da = g, db = -g
Tensor sub(const Tensor& a, const Tensor& b) {
    return binary_op("sub", BinaryOp::Sub, a, b, kNone, [](const Tensor& g, const Tensor&, const Tensor&, const Tensor&, const Needs& n) {
        return Grads{g, n[1] ? neg(g) : Tensor()};
    });
}

// da = g * b, db = g * a
Tensor mul(const Tensor& a, const Tensor& b) {
    return binary_op("mul", BinaryOp::Mul, a, b, kFirst | kSecond, [](const Tensor& g, const Tensor& x, const Tensor& y, const Tensor&, const Needs& n) {
        return Grads{n[0] ? mul(g, y) : Tensor(), n[1] ? mul(g, x) : Tensor()};
    });
}

// da = g / b, db = -g * out / b
Tensor div(const Tensor& a, const Tensor& b) {
    return binary_op("div", BinaryOp::Div, a, b, kSecond | kOut, [](const Tensor& g, const Tensor&, const Tensor& y, const Tensor& out, const Needs& n) {
        return Grads{n[0] ? div(g, y) : Tensor(), n[1] ? neg(div(mul(g, out), y)) : Tensor()};
    });
}

// dx = g
Tensor add(const Tensor& a, double s) {
    return unary_op("add_scalar", UnaryOp::AddScalar, a, s, kNone, [](const Tensor& g, const Tensor&, const Tensor&) { return g; });
}

Tensor sub(const Tensor& a, double s) { return add(a, -s); }

// dx = g * s
Tensor mul(const Tensor& a, double s) {
    return unary_op("mul_scalar", UnaryOp::MulScalar, a, s, kNone, [s](const Tensor& g, const Tensor&, const Tensor&) { return mul(g, s); });
}

Tensor div(const Tensor& a, double s) {
    LATTE_CHECK(s != 0.0, "div: division of tensor ", shape_str(a.shape()), " by scalar zero");
    return mul(a, 1.0 / s);
}

Tensor rsub(double s, const Tensor& a) { return add(neg(a), s); }

// dx = -g * out / x
Tensor rdiv(double s, const Tensor& a) {
    return unary_op("rdiv_scalar", UnaryOp::RDivScalar, a, s, kFirst | kOut, [](const Tensor& g, const Tensor& x, const Tensor& y) {
        return neg(div(mul(g, y), x));
    });
}

// dx = -g
Tensor neg(const Tensor& x) {
    return unary_op("neg", UnaryOp::Neg, x, 0.0, kNone, [](const Tensor& g, const Tensor&, const Tensor&) { return neg(g); });
}

// dx = g * out
Tensor exp(const Tensor& x) {
    return unary_op("exp", UnaryOp::Exp, x, 0.0, kOut, [](const Tensor& g, const Tensor&, const Tensor& y) { return mul(g, y); });
}

// dx = g / x
Tensor log(const Tensor& x) {
    return unary_op("log", UnaryOp::Log, x, 0.0, kFirst, [](const Tensor& g, const Tensor& xs, const Tensor&) { return div(g, xs); });
}

// dx = g * 0.5 / out
Tensor sqrt(const Tensor& x) {
    return unary_op("sqrt", UnaryOp::Sqrt, x, 0.0, kOut, [](const Tensor& g, const Tensor&, const Tensor& y) {
        return div(mul(g, 0.5), y);
    });
}

// dx = g * p * x^(p-1)
Tensor pow(const Tensor& x, double p) {
    return unary_op("pow", UnaryOp::PowScalar, x, p, kFirst, [p](const Tensor& g, const Tensor& xs, const Tensor&) {
        return mul(g, mul(pow(xs, p - 1.0), p));
    });
}

// dx = g * (1 - out^2)
Tensor tanh(const Tensor& x) {
    return unary_op("tanh", UnaryOp::Tanh, x, 0.0, kOut, [](const Tensor& g, const Tensor&, const Tensor& y) {
        return mul(g, rsub(1.0, mul(y, y)));
    });
}

// dx = g * (x > 0)
Tensor relu(const Tensor& x) {
    return unary_op("relu", UnaryOp::Relu, x, 0.0, kOut, [](const Tensor& g, const Tensor&, const Tensor& y) {
        return mul(g, unary_raw(UnaryOp::Sign, y));
    });
}

Tensor eq(const Tensor& a, const Tensor& b) { return comparison("eq", BinaryOp::Eq, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return comparison("gt", BinaryOp::Gt, a, b); }

// x - x is exactly 0 for finite x and nan for nan and +-inf, so one comparison does it on every backend.
Tensor isfinite(const Tensor& x) {
    check_floating("isfinite", x);
    const Tensor d = x.detach();
    return eq(sub(d, d), zeros({}, d.options()));
}

}  // namespace latte
