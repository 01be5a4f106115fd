// Linear algebra on the CPU through LAPACKE: the thin SVD and the numerical rank built on it.
#pragma once
#include "../core/tensor.h"

namespace latte {

// a = U diag(S) Vh with k = min(m, n): U (m, k), S (k) descending, Vh (k, n).
struct SVD {
    Tensor U, S, Vh;
};

// Thin SVD of a 2-D float32/float64 CPU tensor (?gesdd, falling back to ?gesvd). Not
// differentiable: it refuses an input that requires grad while grad mode is on (detach it or
// use NoGradGuard). Throws on NaN/Inf input and when LAPACK fails, with LAPACK's info code.
SVD svd(const Tensor& a);

// Singular values of a above rtol * S_max; rtol < 0 picks numpy's default max(m, n) * eps(dtype).
int64_t matrix_rank(const Tensor& a, double rtol = -1);

}  // namespace latte
