// Loops over rows for the hot paths of softmax, fused attention, norms and losses: compiled
// clones for AVX-512, AVX2 and SSE2 chosen at load time, and exp_shifted_sum's hand-written
// AVX-512 loop chosen on its first call.
#pragma once
#include <cstdint>

namespace latte::cpu {

// x[i] = exp(x[i] - shift) for i < n; returns the sum of the new values, accumulated in double.
// float: a polynomial exp within 2 ulp (exp of -inf is 0, NaN stays NaN); double: std::exp.
double exp_shifted_sum(float* x, int64_t n, float shift);
double exp_shifted_sum(double* x, int64_t n, double shift);

namespace detail {
// For tests: true makes exp_shifted_sum(float*) and max_of(float*) run the compiled clones even
// where the CPU has AVX-512; false restores the normal choice. Affects the calling thread only.
void force_exp_clones_for_testing(bool clones);
}  // namespace detail

// dst[i] = f(src[i]) for f = sigmoid (kind 0), silu (1) or silu's derivative (2), float32, with
// the polynomial exp: the SwiGLU MLP's pointwise work vectorized (std::exp per element was 7%
// of a language-model step).
void sigmoid_family(int kind, float* dst, const float* src, int64_t n);

// SwiGLU's pointwise part, float32, with sigmoid_family's formulas (so bit for bit what silu
// then mul computes): out = silu(gate) * up; backward dgate = (g * up) * silu'(gate),
// dup = g * silu(gate).
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* g, const float* gate, const float* up, int64_t n);

// The fused attention's row work (backends/cpu/attention.cpp), float32 vectorized, float64 plain:
// dst[i] = src[i] * scale (dst may be src); sum of a[i] * b[i] accumulated in double; and
// softmax's backward ds[i] = p[i] * (ds[i] - delta).
void scale_row(float* dst, const float* src, float scale, int64_t n);
void scale_row(double* dst, const double* src, double scale, int64_t n);
double dot_double(const float* a, const float* b, int64_t n);
double dot_double(const double* a, const double* b, int64_t n);
void softmax_grad_row(float* ds, const float* p, float delta, int64_t n);
void softmax_grad_row(double* ds, const double* p, double delta, int64_t n);

// RoPE's rotate-half rotation of `heads` rows of d = 2 half floats sharing one position's c and
// s: out = [x1 c - x2 s, x2 c + x1 s] per row (s negated when inverse).
void rope_rows(float* out, const float* x, const float* c, const float* s, int64_t heads, int64_t half, bool inverse);

// Mean squared error's passes, float32: the sum of (a[i] - b[i])^2 accumulated in double, and
// d[i] = scale * (a[i] - b[i]).
double squared_difference_sum(const float* a, const float* b, int64_t n);
void scaled_difference(float* d, const float* a, const float* b, float scale, int64_t n);

// RMSNorm and LayerNorm rows in double arithmetic (backends/cpu/norm.cpp), float32 vectorized,
// float64 plain: the sum of (x[i] - mu)^p for p = 1 or 2; y[i] = (x[i] - mu) rs w[i] + b[i] (w, b
// may be null: 1 and 0); the backward's sums of gw = g w and of gw xhat, xhat = (x - mu) rs; and
// dx[i] = rs (gw[i] - a - xhat[i] coef).
double centred_power_sum(const float* x, double mu, int power, int64_t n);
double centred_power_sum(const double* x, double mu, int power, int64_t n);
void norm_row(float* y, const float* x, double mu, double rs, const float* w, const float* b, int64_t n);
void norm_row(double* y, const double* x, double mu, double rs, const double* w, const double* b, int64_t n);
void norm_row_sums(const float* g, const float* x, const float* w, double mu, double rs, int64_t n, double* sum_gw,
                   double* sum_gw_xhat);
void norm_row_sums(const double* g, const double* x, const double* w, double mu, double rs, int64_t n,
                   double* sum_gw, double* sum_gw_xhat);
void norm_row_grad(float* dx, const float* g, const float* x, const float* w, double mu, double rs, double a,
                   double coef, int64_t n);
void norm_row_grad(double* dx, const double* g, const double* x, const double* w, double mu, double rs, double a,
                   double coef, int64_t n);

// The largest of x[0..n); NaNs are skipped here (and propagate through exp_shifted_sum); -inf when
// n is 0 or every element is NaN or -inf.
float max_of(const float* x, int64_t n);
double max_of(const double* x, int64_t n);

}  // namespace latte::cpu
