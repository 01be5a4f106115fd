// Loops over rows that the compiler vectorizes for the CPU it runs on (AVX-512, AVX2 or SSE2
// clones chosen at load time), for the hot paths of softmax and fused attention.
#pragma once
#include <cstdint>

namespace latte::cpu {

// x[i] = exp(x[i] - shift) for i < n; returns the sum of the new values, accumulated in double.
// float: a polynomial exp within 2 ulp (exp of -inf is 0, NaN stays NaN); double: std::exp.
double exp_shifted_sum(float* x, int64_t n, float shift);
double exp_shifted_sum(double* x, int64_t n, double shift);

// The largest of x[0..n) (n >= 1); NaNs are skipped here and propagate through exp_shifted_sum.
float max_of(const float* x, int64_t n);
double max_of(const double* x, int64_t n);

}  // namespace latte::cpu
