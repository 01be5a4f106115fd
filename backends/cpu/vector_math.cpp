#include "backends/cpu/vector_math.h"

#include <immintrin.h>

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

// The sum over i < n of term(i) in double, in 8 independent partial sums: a reduction into one
// variable would not vectorize. Inlined into each caller, so that it compiles for the caller's
// clone.
template <class Term>
__attribute__((always_inline)) inline double lane_sum(int64_t n, Term term) {
    constexpr int64_t kLanes = 8;
    double lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] += term(i + j);
    double total = 0;
    for (int64_t j = 0; j < kLanes; ++j) total += lanes[j];
    for (; i < n; ++i) total += term(i);
    return total;
}

// The norm rows' formulas, in double for float32 and float64 rows alike; a null weight or bias
// reads as 1 or 0.
template <class T>
__attribute__((always_inline)) inline double weight_at(const T* w, int64_t i) {
    return w ? static_cast<double>(w[i]) : 1.0;
}

template <class T>
__attribute__((always_inline)) inline double centred_power_sum_of(const T* x, double mu, int power, int64_t n) {
    if (power == 1) return lane_sum(n, [&](int64_t i) { return static_cast<double>(x[i]) - mu; });
    return lane_sum(n, [&](int64_t i) {
        const double v = static_cast<double>(x[i]) - mu;
        return v * v;
    });
}

template <class T>
__attribute__((always_inline)) inline void norm_row_of(T* y, const T* x, double mu, double rs, const T* w, const T* b,
                                                       int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        y[i] = static_cast<T>((static_cast<double>(x[i]) - mu) * rs * weight_at(w, i) + (b ? static_cast<double>(b[i]) : 0.0));
}

template <class T>
__attribute__((always_inline)) inline void norm_row_sums_of(const T* g, const T* x, const T* w, double mu, double rs,
                                                            int64_t n, double* sum_gw, double* sum_gw_xhat) {
    // The weight's null test outside the loops, so that they vectorize (g * 1.0 is g exactly).
    auto sums = [&](auto weight) {
        *sum_gw = lane_sum(n, [&](int64_t i) { return static_cast<double>(g[i]) * weight(i); });
        *sum_gw_xhat = lane_sum(n, [&](int64_t i) {
            return static_cast<double>(g[i]) * weight(i) * ((static_cast<double>(x[i]) - mu) * rs);
        });
    };
    if (w) sums([&](int64_t i) { return static_cast<double>(w[i]); });
    else sums([](int64_t) { return 1.0; });
}

template <class T>
__attribute__((always_inline)) inline void norm_row_grad_of(T* dx, const T* g, const T* x, const T* w, double mu,
                                                            double rs, double a, double coef, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const double gw = static_cast<double>(g[i]) * weight_at(w, i);
        const double xhat = (static_cast<double>(x[i]) - mu) * rs;
        dx[i] = static_cast<T>(rs * (gw - a - xhat * coef));
    }
}

}  // namespace

namespace {

// The mask of the first min(left, 16) lanes: a whole vector, or the tail of a row.
inline __mmask16 first_lanes(int64_t left) {
    return left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

// exp_shifted_sum on AVX-512 in one pass: exp_poly's steps in intrinsics, the sum in two double
// accumulators as it goes, and the three special cases (below -87, above ln(FLT_MAX), NaN) only
// for a vector that has one. The compiled loop of exp_poly blended all three into every vector
// and summed in a second pass: 1.16 ns per element with max_of, the fused attention's largest
// cost after its products.
__attribute__((target("avx512f"))) double exp_shifted_sum_avx512(float* x, int64_t n, float shift) {
    // The maskz forms, all lanes: GCC 12 warns about the plain ones' undefined pass-through operand.
    constexpr __mmask16 kAll = 0xffff;
    const __m512 lo = _mm512_set1_ps(-87.0f), hi = _mm512_set1_ps(88.72283935f), s = _mm512_set1_ps(shift);
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 lanes = first_lanes(n - i);
        const __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, x + i), s);
        const __m512 c = _mm512_maskz_min_ps(kAll, _mm512_maskz_max_ps(kAll, v, lo), hi);  // NaN becomes lo here, fixed below
        const __m512 k = _mm512_maskz_roundscale_ps(
            kAll, _mm512_fmadd_ps(c, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
            _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), c);
        r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860682030941723e-6f), r);
        __m512 p = _mm512_set1_ps(1.0f / 5040);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
        __m512 e = _mm512_maskz_scalef_ps(kAll, p, k);  // p 2^k, k in [-126, 128]
        const __mmask16 special = _mm512_cmp_ps_mask(v, lo, _CMP_NGE_UQ) | _mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ);
        if (special & lanes) {  // below lo: 0; above hi: inf; NaN: itself
            e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), _mm512_setzero_ps());
            e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
            e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
        }
        _mm512_mask_storeu_ps(x + i, lanes, e);
        e = _mm512_maskz_mov_ps(lanes, e);
        const __m512d wide = _mm512_castps_pd(e);  // sixteen floats, as two halves of eight
        acc0 = _mm512_add_pd(acc0, _mm512_maskz_cvtps_pd(0xff, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, wide, 0))));
        acc1 = _mm512_add_pd(acc1, _mm512_maskz_cvtps_pd(0xff, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, wide, 1))));
    }
    double sums[8];
    _mm512_storeu_pd(sums, _mm512_add_pd(acc0, acc1));
    return ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]));
}

__attribute__((target_clones("avx2", "default")))
double exp_shifted_sum_clones(float* x, int64_t n, float shift) {
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

}  // namespace

namespace {
thread_local bool force_clones = false;

// Whether the hand-written AVX-512 loops run: the CPU has AVX-512 and no test asked for the clones.
bool hand_written_avx512() {
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    return avx512 && !force_clones;
}
}  // namespace

double exp_shifted_sum(float* x, int64_t n, float shift) {
    return hand_written_avx512() ? exp_shifted_sum_avx512(x, n, shift) : exp_shifted_sum_clones(x, n, shift);
}

namespace detail {
void force_exp_clones_for_testing(bool clones) { force_clones = clones; }
}  // namespace detail

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

namespace {

// max_of on AVX-512: a vector of running maxima, reduced once at the end by halving. The clones'
// loop ended in sixteen dependent scalar comparisons, which on the attention's rows of 128-256
// scores cost as much as the loop (max_of was 7% of a small bf16 attention step).
__attribute__((target("avx512f"))) float max_of_avx512(const float* x, int64_t n) {
    constexpr __mmask16 kAll = 0xffff;
    const __m512 none = _mm512_set1_ps(-INFINITY);
    __m512 m = none;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 lanes = first_lanes(n - i);
        // vmaxps gives its second operand when either is NaN: a NaN in x leaves m as it was.
        m = _mm512_maskz_max_ps(kAll, _mm512_mask_loadu_ps(none, lanes, x + i), m);
    }
    // Swapped halves, quarters, pairs and neighbours (not _mm512_reduce_max_ps, whose GCC 12 form
    // reads an undefined operand and warns; the maskz forms, all lanes, for the same reason).
    m = _mm512_maskz_max_ps(kAll, m, _mm512_maskz_shuffle_f32x4(kAll, m, m, 0x4e));
    m = _mm512_maskz_max_ps(kAll, m, _mm512_maskz_shuffle_f32x4(kAll, m, m, 0xb1));
    m = _mm512_maskz_max_ps(kAll, m, _mm512_maskz_permute_ps(kAll, m, 0x4e));
    m = _mm512_maskz_max_ps(kAll, m, _mm512_maskz_permute_ps(kAll, m, 0xb1));
    return _mm512_cvtss_f32(m);
}

__attribute__((target_clones("avx2", "default")))
float max_of_clones(const float* x, int64_t n) {
    constexpr int64_t kLanes = 16;
    float lanes[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) lanes[j] = -INFINITY;
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
    float m = -INFINITY;
    for (int64_t j = 0; j < kLanes; ++j) m = lanes[j] > m ? lanes[j] : m;
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

}  // namespace

float max_of(const float* x, int64_t n) { return hand_written_avx512() ? max_of_avx512(x, n) : max_of_clones(x, n); }

__attribute__((target_clones("avx512f", "avx2", "default")))
void scale_row(float* dst, const float* src, float scale, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
}

void scale_row(double* dst, const double* src, double scale, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
double dot_double(const float* a, const float* b, int64_t n) {
    return lane_sum(n, [&](int64_t i) { return static_cast<double>(a[i]) * b[i]; });
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void rope_rows(float* out, const float* x, const float* c, const float* s, int64_t heads, int64_t half, bool inverse) {
    const float sign = inverse ? -1.0f : 1.0f;
    for (int64_t h = 0; h < heads; ++h) {
        const float* x1 = x + h * 2 * half;
        const float* x2 = x1 + half;
        float* o1 = out + h * 2 * half;
        float* o2 = o1 + half;
        for (int64_t i = 0; i < half; ++i) {
            const float si = sign * s[i];
            o1[i] = x1[i] * c[i] - x2[i] * si;
            o2[i] = x2[i] * c[i] + x1[i] * si;
        }
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
double squared_difference_sum(const float* a, const float* b, int64_t n) {
    return lane_sum(n, [&](int64_t i) {
        const double d = static_cast<double>(a[i]) - b[i];
        return d * d;
    });
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void scaled_difference(float* d, const float* a, const float* b, float scale, int64_t n) {
    for (int64_t i = 0; i < n; ++i) d[i] = scale * (a[i] - b[i]);
}

// The norm rows: float32 clones, and float64 plainly (norm.cpp runs both through these).
__attribute__((target_clones("avx512f", "avx2", "default")))
double centred_power_sum(const float* x, double mu, int power, int64_t n) { return centred_power_sum_of(x, mu, power, n); }

double centred_power_sum(const double* x, double mu, int power, int64_t n) { return centred_power_sum_of(x, mu, power, n); }

__attribute__((target_clones("avx512f", "avx2", "default")))
void norm_row(float* y, const float* x, double mu, double rs, const float* w, const float* b, int64_t n) {
    norm_row_of(y, x, mu, rs, w, b, n);
}

void norm_row(double* y, const double* x, double mu, double rs, const double* w, const double* b, int64_t n) {
    norm_row_of(y, x, mu, rs, w, b, n);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void norm_row_sums(const float* g, const float* x, const float* w, double mu, double rs, int64_t n, double* sum_gw,
                   double* sum_gw_xhat) {
    norm_row_sums_of(g, x, w, mu, rs, n, sum_gw, sum_gw_xhat);
}

void norm_row_sums(const double* g, const double* x, const double* w, double mu, double rs, int64_t n, double* sum_gw,
                   double* sum_gw_xhat) {
    norm_row_sums_of(g, x, w, mu, rs, n, sum_gw, sum_gw_xhat);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void norm_row_grad(float* dx, const float* g, const float* x, const float* w, double mu, double rs, double a,
                   double coef, int64_t n) {
    norm_row_grad_of(dx, g, x, w, mu, rs, a, coef, n);
}

void norm_row_grad(double* dx, const double* g, const double* x, const double* w, double mu, double rs, double a,
                   double coef, int64_t n) {
    norm_row_grad_of(dx, g, x, w, mu, rs, a, coef, n);
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
    double m = -INFINITY;
    for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;  // false for a NaN: skipped
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
