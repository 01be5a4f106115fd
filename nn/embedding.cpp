#include "nn/embedding.h"

#include "ops/ops.h"

namespace latte::nn {

Embedding::Embedding(int64_t vocab, int64_t dim, Generator& gen, DType dtype) : vocab_(vocab), dim_(dim) {
    LATTE_CHECK(vocab > 0 && dim > 0, "Embedding: sizes must be positive, got vocab=", vocab, " D=", dim);
    register_parameter("weight", randn({vocab, dim}, gen, TensorOptions{}.with_dtype(dtype)));
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight(), ids); }

}  // namespace latte::nn
