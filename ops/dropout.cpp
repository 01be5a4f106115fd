#include "ops/dropout.h"

#include "core/factory.h"
#include "core/node.h"
#include "ops/checks.h"
#include "ops/elementwise.h"

namespace latte {

// dx = g * mask, mask = (u >= p) / (1 - p)
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
    check_floating("dropout", x);
    LATTE_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p, " (input ", shape_str(x.shape()), ")");
    if (!training || p == 0) return x;
    const Tensor u = rand(x.shape(), gen, x.options());
    Backend& backend = backend_for(x.device());
    Tensor mask = Tensor::empty(x.shape(), x.options());
    backend.unary(UnaryOp::GeScalar, p, mask.view(), u.view());
    backend.unary(UnaryOp::MulScalar, 1.0 / (1.0 - p), mask.view(), mask.view());
    Tensor out = Tensor::empty(x.shape(), x.options());
    backend.binary(BinaryOp::Mul, out.view(), x.detach().view(), mask.view());
    if (needs_graph({x})) {
        record(
            out, "dropout", {x},
            [mask](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> { return {mul(g, mask)}; },
            {mask});
    }
    return out;
}

}  // namespace latte
