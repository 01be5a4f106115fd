// Reductions over the middle axis of a contiguous [outer, size, inner] block.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"

namespace latte::cpu {
namespace {

// max that keeps a NaN (as PyTorch's does) instead of comparing it away.
template <class T>
T nan_max(T a, T b) {
    return (a > b || a != a) ? a : b;
}

// Sums accumulate in double for float32 too, so long reductions lose no precision.
template <class T>
void reduce_typed(ReduceOp op, T* dst, const T* src, int64_t outer, int64_t size, int64_t inner) {
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(size * inner, 1));
    if (inner == 1) {
        parallel_for(outer, grain, [&](int64_t begin, int64_t end) {
            for (int64_t o = begin; o < end; ++o) {
                const T* row = src + o * size;
                switch (op) {
                    case ReduceOp::Sum: {
                        double acc = 0;
                        for (int64_t i = 0; i < size; ++i) acc += row[i];
                        dst[o] = static_cast<T>(acc);
                        break;
                    }
                    case ReduceOp::Max: {
                        T m = -std::numeric_limits<T>::infinity();
                        for (int64_t i = 0; i < size; ++i) m = nan_max(m, row[i]);
                        dst[o] = m;
                        break;
                    }
                }
            }
        });
        return;
    }
    // Reduce whole rows of length `inner` at a time so the inner loop stays contiguous.
    parallel_for(outer * inner, 32768, [&](int64_t begin, int64_t end) {
        for (int64_t o = begin / inner; o <= (end - 1) / inner; ++o) {
            const int64_t j0 = std::max(begin, o * inner) - o * inner;
            const int64_t j1 = std::min(end, (o + 1) * inner) - o * inner;
            const T* block = src + o * size * inner;
            T* out = dst + o * inner;
            switch (op) {
                case ReduceOp::Sum: {
                    std::vector<double> acc(static_cast<size_t>(j1 - j0), 0.0);
                    for (int64_t i = 0; i < size; ++i)
                        for (int64_t j = j0; j < j1; ++j) acc[static_cast<size_t>(j - j0)] += block[i * inner + j];
                    for (int64_t j = j0; j < j1; ++j) out[j] = static_cast<T>(acc[static_cast<size_t>(j - j0)]);
                    break;
                }
                case ReduceOp::Max: {
                    for (int64_t j = j0; j < j1; ++j) out[j] = -std::numeric_limits<T>::infinity();
                    for (int64_t i = 0; i < size; ++i)
                        for (int64_t j = j0; j < j1; ++j) out[j] = nan_max(out[j], block[i * inner + j]);
                    break;
                }
            }
        }
    });
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, void* dst, const void* src, DType dtype, int64_t outer, int64_t size,
                        int64_t inner) {
    dispatch(dtype, [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        reduce_typed<T>(op, static_cast<T*>(dst), static_cast<const T*>(src), outer, size, inner);
    });
}

}  // namespace latte::cpu
