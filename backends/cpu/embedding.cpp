// Embedding rows: gather (forward) and scatter-add (backward, repeated ids accumulate).
#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"

namespace latte::cpu {

void CpuBackend::gather_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols) {
    const std::size_t row_bytes = static_cast<std::size_t>(cols) * dtype_size(dtype);
    char* d = static_cast<char*>(dst);
    const char* s = static_cast<const char*>(src);
    parallel_for(n, row_grain(cols), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            std::memcpy(d + static_cast<std::size_t>(i) * row_bytes, s + static_cast<std::size_t>(ids[i]) * row_bytes,
                        row_bytes);
    });
}

// Threads split the columns, never the ids, so two rows with the same id never race.
void CpuBackend::scatter_add_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n,
                                  int64_t cols) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* d = static_cast<T*>(dst);
        const T* s = static_cast<const T*>(src);
        parallel_for(cols, std::max<int64_t>(16, 32768 / std::max<int64_t>(n, 1)), [&](int64_t begin, int64_t end) {
            for (int64_t i = 0; i < n; ++i) {
                T* out = d + ids[i] * cols;
                const T* in = s + i * cols;
                for (int64_t c = begin; c < end; ++c) out[c] += in[c];
            }
        });
    });
}

}  // namespace latte::cpu
