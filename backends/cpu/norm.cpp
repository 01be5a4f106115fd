// RMSNorm and LayerNorm over the last dim: one row per loop step, threaded over rows, through the
// row helpers of vector_math.h (sums in double, also for float32).
#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/vector_math.h"

namespace latte::cpu {

void CpuBackend::norm_fwd(NormKind kind, void* y, void* mean, void* rstd, const void* x, const void* weight,
                          const void* bias, DType dtype, int64_t rows, int64_t cols, double eps) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        const T* w = static_cast<const T*>(weight);
        const T* b = static_cast<const T*>(bias);
        parallel_for(rows, row_grain(cols), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                const T* xr = static_cast<const T*>(x) + r * cols;
                T* yr = static_cast<T*>(y) + r * cols;
                const double n = static_cast<double>(cols);
                const double mu = kind == NormKind::Layer ? centred_power_sum(xr, 0.0, 1, cols) / n : 0.0;
                const double rs = 1.0 / std::sqrt(centred_power_sum(xr, mu, 2, cols) / n + eps);
                if (kind == NormKind::Layer) static_cast<T*>(mean)[r] = static_cast<T>(mu);
                static_cast<T*>(rstd)[r] = static_cast<T>(rs);
                norm_row(yr, xr, mu, rs, w, b, cols);
            }
        });
    });
}

void CpuBackend::norm_bwd(NormKind kind, void* dx, const void* dy, const void* x, const void* weight, const void* mean,
                          const void* rstd, DType dtype, int64_t rows, int64_t cols) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        const T* w = static_cast<const T*>(weight);
        parallel_for(rows, row_grain(cols), [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
                const T* xr = static_cast<const T*>(x) + r * cols;
                const T* gr = static_cast<const T*>(dy) + r * cols;
                T* dr = static_cast<T*>(dx) + r * cols;
                const double mu = kind == NormKind::Layer ? static_cast<double>(static_cast<const T*>(mean)[r]) : 0.0;
                const double rs = static_cast<const T*>(rstd)[r];
                const double n = static_cast<double>(cols);
                double sum_gw = 0, sum_gwx = 0;
                norm_row_sums(gr, xr, w, mu, rs, cols, &sum_gw, &sum_gwx);
                norm_row_grad(dr, gr, xr, w, mu, rs, kind == NormKind::Layer ? sum_gw / n : 0.0, sum_gwx / n, cols);
            }
        });
    });
}

}  // namespace latte::cpu
