// Normalization layers over the last dim, like torch.nn.RMSNorm and torch.nn.LayerNorm with
// normalized_shape = (D,) and elementwise_affine: weight initialized to 1 (LayerNorm's bias to 0).
#pragma once
#include <memory>

#include "module.h"

namespace latte::nn {

// What a transformer block needs of a norm: x (..., D) -> (..., D).
class Norm : public Module {
public:
    virtual Tensor forward(const Tensor& x) const = 0;
    Tensor operator()(const Tensor& x) const { return forward(x); }
    int64_t dim() const { return dim_; }
    double eps() const { return eps_; }

protected:
    // Checks D > 0 and a finite eps >= 0, naming `who` in the error.
    Norm(const char* who, int64_t dim, double eps);

private:
    int64_t dim_;
    double eps_;
};

// y = x / sqrt(mean(x^2) + eps) * weight. Parameter: weight (D).
class RMSNorm : public Norm {
public:
    explicit RMSNorm(int64_t dim, double eps = 1e-6, DType dtype = DType::Float32);
    Tensor forward(const Tensor& x) const override;
};

// y = (x - mean) / sqrt(var + eps) * weight + bias (biased variance). Parameters: weight, bias (D).
class LayerNorm : public Norm {
public:
    explicit LayerNorm(int64_t dim, double eps = 1e-5, DType dtype = DType::Float32);
    Tensor forward(const Tensor& x) const override;
};

enum class NormType { RMS, Layer };
// RMSNorm(dim, 1e-6) or LayerNorm(dim, 1e-5), or the given eps when eps > 0.
std::shared_ptr<Norm> make_norm(NormType kind, int64_t dim, DType dtype = DType::Float32, double eps = 0);

}  // namespace latte::nn
