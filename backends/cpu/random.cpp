// Random fills on the CPU threads, element by element from the counter-based streams.
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "core/random_counter.h"

namespace latte::cpu {

void CpuBackend::fill_normal(void* dst, DType dtype, int64_t n, uint64_t state, double mean, double std) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* out = static_cast<T*>(dst);
        // Work in whole pairs so each Box-Muller pair is computed once.
        const int64_t pairs = (n + 1) / 2;
        parallel_for(pairs, 4096, [&](int64_t begin, int64_t end) {
            for (int64_t p = begin; p < end; ++p) {
                double c = 0, s = 0;
                random::normal_pair(state, static_cast<uint64_t>(p), c, s);
                out[2 * p] = static_cast<T>(mean + std * c);
                if (2 * p + 1 < n) out[2 * p + 1] = static_cast<T>(mean + std * s);
            }
        });
    });
}

void CpuBackend::fill_uniform(void* dst, DType dtype, int64_t n, uint64_t state, double low, double high) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* out = static_cast<T*>(dst);
        parallel_for(n, 8192, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i)
                out[i] = random::uniform_in<T>(state, static_cast<uint64_t>(i + 1), low, high);
        });
    });
}

}  // namespace latte::cpu
