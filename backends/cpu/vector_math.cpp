#include "backends/cpu/vector_math.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace latte::cpu {
namespace {

// exp(x) = 2^n e^r with n = round(x / ln 2) and |r| <= ln 2 / 2, e^r by its Taylor series to r^7
// (relative error below r^8/8! < 6e-9 there). Branch-free so that the loop vectorizes. Below
// -87 it flushes to 0; above ln(FLT_MAX) it is +inf, as exp overflows (sigmoid(-100) is then 0
// and silu(-inf) NaN, as in PyTorch, not the 6e-39 and -inf that a clamped exp(88) gave).
inline float exp_poly(float x) {
    const float lo = -87.0f, hi = 88.72283935f;  // ln(FLT_MAX)
    const float c = x < lo ? lo : (x > hi ? hi : x);
    const float n = std::floor(c * 1.44269504088896341f + 0.5f);
    // ln 2 split in two so that n * ln2_hi is exact in float.
    const float r = (c - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // 2^n for n in [-126, 128]: 2^128 is not a float, so a positive n is applied as 2^(n-1) * 2.
    const int32_t up = n > 0.0f ? 1 : 0;
    const int32_t bits = (static_cast<int32_t>(n) - up + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    const float value = p * scale * static_cast<float>(1 + up);
    return x < lo ? 0.0f : (x != x ? x : (x > hi ? std::numeric_limits<float>::infinity() : value));
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default")))
double exp_shifted_sum(float* x, int64_t n, float shift) {
    for (int64_t i = 0; i < n; ++i) x[i] = exp_poly(x[i] - shift);
    // 16 independent double partial sums: a reduction into one variable would not vectorize.
    constexpr int64_t kLanes = 16;
    double lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] += x[i + j];
    double total = 0;
    for (int64_t j = 0; j < kLanes; ++j) total += lanes[j];
    for (; i < n; ++i) total += x[i];
    return total;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void sigmoid_family(int kind, float* dst, const float* src, int64_t n) {
    // One loop per kind, so that each vectorizes without a branch inside.
    if (kind == 0) {
        for (int64_t i = 0; i < n; ++i) dst[i] = 1.0f / (1.0f + exp_poly(-src[i]));
    } else if (kind == 1) {
        for (int64_t i = 0; i < n; ++i) dst[i] = src[i] / (1.0f + exp_poly(-src[i]));
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const float s = 1.0f / (1.0f + exp_poly(-src[i]));
            dst[i] = s * (1.0f + src[i] * (1.0f - s));
        }
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + exp_poly(-gate[i])) * up[i];
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void swiglu_backward(float* dgate, float* dup, const float* g, const float* gate, const float* up, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float x = gate[i], s = 1.0f / (1.0f + exp_poly(-x));
        dup[i] = g[i] * (x / (1.0f + exp_poly(-x)));
        dgate[i] = (g[i] * up[i]) * (s * (1.0f + x * (1.0f - s)));
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
float max_of(const float* x, int64_t n) {
    constexpr int64_t kLanes = 16;
    float lanes[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) lanes[j] = x[0];
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] = lanes[j] > x[i + j] ? lanes[j] : x[i + j];
    float m = x[0];
    for (int64_t j = 0; j < kLanes; ++j) m = m > lanes[j] ? m : lanes[j];
    for (; i < n; ++i) m = m > x[i] ? m : x[i];
    return m;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void scale_row(float* dst, const float* src, float scale, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
}

void scale_row(double* dst, const double* src, double scale, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
double dot_double(const float* a, const float* b, int64_t n) {
    constexpr int64_t kLanes = 8;  // independent partial sums, as exp_shifted_sum's
    double lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] += static_cast<double>(a[i + j]) * b[i + j];
    double total = 0;
    for (int64_t j = 0; j < kLanes; ++j) total += lanes[j];
    for (; i < n; ++i) total += static_cast<double>(a[i]) * b[i];
    return total;
}

double dot_double(const double* a, const double* b, int64_t n) {
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += a[i] * b[i];
    return total;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void softmax_grad_row(float* ds, const float* p, float delta, int64_t n) {
    for (int64_t i = 0; i < n; ++i) ds[i] = p[i] * (ds[i] - delta);
}

void softmax_grad_row(double* ds, const double* p, double delta, int64_t n) {
    for (int64_t i = 0; i < n; ++i) ds[i] = p[i] * (ds[i] - delta);
}

double max_of(const double* x, int64_t n) {
    double m = x[0];
    for (int64_t i = 1; i < n; ++i) m = m > x[i] ? m : x[i];
    return m;
}

double exp_shifted_sum(double* x, int64_t n, double shift) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

}  // namespace latte::cpu
