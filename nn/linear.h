// Linear: y = x W^T (+ b), with W stored (out, in) as in PyTorch and PyTorch's default init:
// W and b uniform in [-1/sqrt(in), 1/sqrt(in)] (kaiming_uniform with a = sqrt(5)).
#pragma once
#include "../core/random.h"
#include "module.h"

namespace latte::nn {

class Linear : public Module {
public:
    Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen, DType dtype = DType::Float32);

    // x: (..., in) -> (..., out)
    Tensor forward(const Tensor& x) const;
    Tensor operator()(const Tensor& x) const { return forward(x); }

    const Tensor& weight() const { return param("weight"); }
    // Overwrites the weight's values in place (like assigning W.weight in PyTorch); `w` must be
    // (out, in) and is converted to the weight's dtype and device. The parameter stays the same leaf.
    void set_weight(const Tensor& w);
    bool has_bias() const { return has_bias_; }
    int64_t in_features() const { return in_; }
    int64_t out_features() const { return out_; }

private:
    int64_t in_, out_;
    bool has_bias_;
};

}  // namespace latte::nn
