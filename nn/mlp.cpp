#include "nn/mlp.h"

#include "ops/ops.h"

namespace latte::nn {

MLP::MLP(int64_t dim, int64_t hidden, Generator& gen, DType dtype) {
    LATTE_CHECK(dim > 0 && hidden > 0, "MLP: sizes must be positive, got D=", dim, " hidden=", hidden);
    W_gate = register_module("W_gate", std::make_shared<Linear>(dim, hidden, false, gen, dtype));
    W_up = register_module("W_up", std::make_shared<Linear>(dim, hidden, false, gen, dtype));
    W_down = register_module("W_down", std::make_shared<Linear>(hidden, dim, false, gen, dtype));
}

Tensor MLP::forward(const Tensor& x) const { return W_down->forward(swiglu(W_gate->forward(x), W_up->forward(x))); }

}  // namespace latte::nn
