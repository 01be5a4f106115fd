// Mean squared error's passes (Backend::squared_error_sum / squared_error_grad): float32 through
// the vectorized loops of vector_math.h, float64 plainly; the sum in double on each thread's
// share, the shares added in order.
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/vector_math.h"

namespace latte::cpu {
namespace {
constexpr int64_t kGrain = 1 << 16;  // elements per task at least
}  // namespace

double CpuBackend::squared_error_sum(const void* input, const void* target, DType dtype, int64_t n) {
    std::vector<double> shares(static_cast<size_t>(num_threads()), 0.0);
    const int64_t chunk = (n + num_threads() - 1) / num_threads();
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        const T* a = static_cast<const T*>(input);
        const T* b = static_cast<const T*>(target);
        // One task per thread's share, so the sum's order depends on n and the thread count only.
        parallel_for(static_cast<int64_t>(shares.size()), 1, [&](int64_t lo, int64_t hi) {
            for (int64_t t = lo; t < hi; ++t) {
                const int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
                if constexpr (std::is_same_v<T, float>) {
                    shares[static_cast<size_t>(t)] = squared_difference_sum(a + begin, b + begin, end - begin);
                } else {
                    double total = 0;
                    for (int64_t i = begin; i < end; ++i) total += (a[i] - b[i]) * (a[i] - b[i]);
                    shares[static_cast<size_t>(t)] = total;
                }
            }
        });
    });
    double total = 0;
    for (double s : shares) total += s;
    return total;
}

void CpuBackend::squared_error_grad(void* dinput, const void* input, const void* target, double scale, DType dtype,
                                    int64_t n) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* d = static_cast<T*>(dinput);
        const T* a = static_cast<const T*>(input);
        const T* b = static_cast<const T*>(target);
        parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
            if constexpr (std::is_same_v<T, float>) {
                scaled_difference(d + lo, a + lo, b + lo, static_cast<float>(scale), hi - lo);
            } else {
                for (int64_t i = lo; i < hi; ++i) d[i] = scale * (a[i] - b[i]);
            }
        });
    });
}

}  // namespace latte::cpu
