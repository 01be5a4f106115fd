// Fused log-softmax + negative log-likelihood over rows of logits, forward and backward.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/vector_math.h"

namespace latte::cpu {
namespace {

// A row's log-sum-exp, in double. float32 rows take the vectorized exp_shifted_sum (float exp
// within 2 ulp, the sum in double) on a per-thread copy: the scalar double exp over a 512-wide
// vocabulary was 3% of the language-model step. NaN propagates (except beside +inf, which gives
// +inf, as before); rows of -inf give -inf.
template <class T>
double log_sum_exp(const T* xr, int64_t cols) {
    if constexpr (std::is_same_v<T, float>) {
        const float m = max_of(xr, cols);
        if (!std::isfinite(m)) return m;
        thread_local std::vector<float> row;
        if (row.size() < static_cast<size_t>(cols)) row.resize(static_cast<size_t>(cols));
        std::copy(xr, xr + cols, row.data());
        return m + std::log(exp_shifted_sum(row.data(), cols, m));
    } else {
        const double m = max_of(xr, cols);
        double s = 0;  // in double, as softmax does: long float32 rows drift otherwise
        if (std::isfinite(m))
            for (int64_t c = 0; c < cols; ++c) s += std::exp(static_cast<double>(xr[c]) - m);
        return std::isfinite(m) ? m + std::log(s) : m;
    }
}

// dr = scale * exp(x - lse) for one row.
template <class T>
void scaled_probabilities(T* dr, const T* xr, int64_t cols, double lse, T scale) {
    if constexpr (std::is_same_v<T, float>) {
        // exp(x - m) on the vector path, then one factor exp(m - lse) in double: x - m of two
        // float32 values near the row's max is exact, where a float32 lse (1e4 has an ulp of
        // 1e-3) would put 6e-5 of relative error into the gradient.
        const float m = max_of(xr, cols);
        if (std::isfinite(m) && std::isfinite(lse)) {
            std::copy(xr, xr + cols, dr);
            exp_shifted_sum(dr, cols, m);
            scale_row(dr, dr, static_cast<float>(scale * std::exp(static_cast<double>(m) - lse)), cols);
            return;
        }
    }
    // x - lse in double, then exp in T.
    for (int64_t c = 0; c < cols; ++c) dr[c] = scale * std::exp(static_cast<T>(static_cast<double>(xr[c]) - lse));
}

}  // namespace

void CpuBackend::cross_entropy_fwd(void* loss, void* lse, const void* logits, const int64_t* targets, DType dtype,
                                   int64_t rows, int64_t cols, int64_t ignore_index) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* l = static_cast<T*>(loss);
        double* z = static_cast<double*>(lse);
        const T* x = static_cast<const T*>(logits);
        parallel_for(rows, row_grain(cols), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                const T* xr = x + r * cols;
                const double lse_r = log_sum_exp(xr, cols);
                z[r] = lse_r;
                const int64_t t = targets[r];
                l[r] = t == ignore_index ? T(0) : static_cast<T>(lse_r - static_cast<double>(xr[t]));
            }
        });
    });
}

void CpuBackend::cross_entropy_bwd(void* dx, const void* logits, const void* lse, const int64_t* targets, const void* g,
                                   DType dtype, int64_t rows, int64_t cols, int64_t ignore_index) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* d = static_cast<T*>(dx);
        const T* x = static_cast<const T*>(logits);
        const double* z = static_cast<const double*>(lse);
        const T* gr = static_cast<const T*>(g);
        parallel_for(rows, row_grain(cols), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                T* dr = d + r * cols;
                const int64_t t = targets[r];
                if (t == ignore_index) {
                    std::fill(dr, dr + cols, T(0));
                    continue;
                }
                const T scale = gr[r];
                scaled_probabilities(dr, x + r * cols, cols, z[r], scale);
                dr[t] -= scale;
            }
        });
    });
}

}  // namespace latte::cpu
