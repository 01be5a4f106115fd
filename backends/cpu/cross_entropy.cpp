// Fused log-softmax + negative log-likelihood over rows of logits, forward and backward.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"

namespace latte::cpu {
namespace {

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }

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
                double m = -std::numeric_limits<double>::infinity();
                for (int64_t c = 0; c < cols; ++c) m = std::max<double>(m, xr[c]);
                double s = 0;  // in double, as softmax does: long float32 rows drift otherwise
                if (std::isfinite(m))
                    for (int64_t c = 0; c < cols; ++c) s += std::exp(static_cast<double>(xr[c]) - m);
                const double lse_r = std::isfinite(m) ? m + std::log(s) : m;
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
                const T* xr = x + r * cols;
                const T scale = gr[r];
                const double shift = z[r];
                // x - lse in double, then exp in T: a float lse (1e4 has an ulp of 1e-3) cost the
                // gradient 6e-5 relative at large logits.
                for (int64_t c = 0; c < cols; ++c)
                    dr[c] = scale * std::exp(static_cast<T>(static_cast<double>(xr[c]) - shift));
                dr[t] -= scale;
            }
        });
    });
}

}  // namespace latte::cpu
