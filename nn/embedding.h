// Embedding: a (vocab, D) table of learned rows, looked up by int64 token ids, like
// torch.nn.Embedding (weight initialized N(0, 1), as PyTorch).
#pragma once
#include "../core/random.h"
#include "module.h"

namespace latte::nn {

class Embedding : public Module {
public:
    Embedding(int64_t vocab, int64_t dim, Generator& gen, DType dtype = DType::Float32);

    // ids int64 (...) on the weight's device -> (..., D). Ids outside [0, vocab) throw.
    Tensor forward(const Tensor& ids) const;
    Tensor operator()(const Tensor& ids) const { return forward(ids); }

    const Tensor& weight() const { return param("weight"); }
    int64_t vocab() const { return vocab_; }
    int64_t dim() const { return dim_; }

private:
    int64_t vocab_, dim_;
};

}  // namespace latte::nn
