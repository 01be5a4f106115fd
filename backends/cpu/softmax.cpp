// Row-wise softmax and log-softmax with their fused backward, numerically stable (max-shifted).
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/vector_math.h"

namespace latte::cpu {
namespace {

template <class T>
void softmax_rows(T* y, const T* x, int64_t rows, int64_t cols, bool log) {
    parallel_for(rows, row_grain(cols), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const T* xr = x + r * cols;
            T* yr = y + r * cols;
            T m = cols > 0 ? max_of(xr, cols) : T(0);
            if (m == -std::numeric_limits<T>::infinity()) m = 0;  // a fully masked row stays finite-safe
            std::copy(xr, xr + cols, yr);
            // Summed in double: a float32 sum over a long row drifts (2^20 columns: 2e-5).
            const double sum = exp_shifted_sum(yr, cols, m);
            if (log) {
                const T lse = static_cast<T>(std::log(sum));
                for (int64_t i = 0; i < cols; ++i) yr[i] = xr[i] - m - lse;
            } else {
                const T inv = static_cast<T>(1.0 / sum);
                for (int64_t i = 0; i < cols; ++i) yr[i] *= inv;
            }
        }
    });
}

template <class T>
void softmax_rows_bwd(T* dx, const T* y, const T* dy, int64_t rows, int64_t cols, bool log) {
    parallel_for(rows, row_grain(cols), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            const T* yr = y + r * cols;
            const T* gr = dy + r * cols;
            T* dr = dx + r * cols;
            double acc = 0;
            if (log) {
                for (int64_t i = 0; i < cols; ++i) acc += gr[i];
            } else {
                for (int64_t i = 0; i < cols; ++i) acc += static_cast<double>(gr[i]) * yr[i];
            }
            const T dot = static_cast<T>(acc);
            if (log) {
                for (int64_t i = 0; i < cols; ++i) dr[i] = gr[i] - std::exp(yr[i]) * dot;
            } else {
                for (int64_t i = 0; i < cols; ++i) dr[i] = yr[i] * (gr[i] - dot);
            }
        }
    });
}

}  // namespace

void CpuBackend::softmax_fwd(void* y, const void* x, DType dtype, int64_t rows, int64_t cols, bool log) {
    dispatch(dtype, [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        softmax_rows<T>(static_cast<T*>(y), static_cast<const T*>(x), rows, cols, log);
    });
}

void CpuBackend::softmax_bwd(void* dx, const void* y, const void* dy, DType dtype, int64_t rows, int64_t cols,
                             bool log) {
    dispatch(dtype, [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        softmax_rows_bwd<T>(static_cast<T*>(dx), static_cast<const T*>(y), static_cast<const T*>(dy), rows, cols, log);
    });
}

}  // namespace latte::cpu
