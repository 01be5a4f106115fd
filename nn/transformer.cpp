#include "nn/transformer.h"

#include "ops/ops.h"

namespace latte::nn {

TransformerBlock::TransformerBlock(int64_t dim, std::shared_ptr<Attention> attention, int64_t mlp_hidden,
                                   Generator& gen, NormType norm, DType dtype) {
    LATTE_CHECK(attention != nullptr, "TransformerBlock: null attention module");
    LATTE_CHECK(attention->input_width() == dim && attention->context_width() == dim, "TransformerBlock: the "
                "attention's widths (D_1=", attention->input_width(), ", D_2=", attention->context_width(),
                ") must both be D=", dim);
    norm1 = register_module("norm1", make_norm(norm, dim, dtype));
    attn = register_module("attn", std::move(attention));
    norm2 = register_module("norm2", make_norm(norm, dim, dtype));
    mlp = register_module("mlp", std::make_shared<MLP>(dim, mlp_hidden, gen, dtype));
}

Tensor TransformerBlock::forward(const Tensor& x) const {
    const Tensor h = norm1->forward(x);
    const Tensor a = add(x, attn->forward(h, h, /*causal=*/true));
    return add(a, mlp->forward(norm2->forward(a)));
}

}  // namespace latte::nn
