// RoPE's rotation in one pass (Backend::rope_rotate): each (outer, position) block of `heads`
// rows shares that position's cos and sin; float32 through vector_math.h's rope_rows.
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/vector_math.h"

namespace latte::cpu {

void CpuBackend::rope_rotate(void* out, const void* x, const void* cos, const void* sin, DType dtype, int64_t outer,
                             int64_t length, int64_t heads, int64_t d, bool inverse) {
    const int64_t half = d / 2, block = heads * d;
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* o = static_cast<T*>(out);
        const T* xp = static_cast<const T*>(x);
        const T* cp = static_cast<const T*>(cos);
        const T* sp = static_cast<const T*>(sin);
        parallel_for(outer * length, row_grain(block), [&](int64_t lo, int64_t hi) {
            for (int64_t r = lo; r < hi; ++r) {
                const T* c = cp + (r % length) * half;
                const T* s = sp + (r % length) * half;
                if constexpr (std::is_same_v<T, float>) {
                    rope_rows(o + r * block, xp + r * block, c, s, heads, half, inverse);
                } else {
                    for (int64_t h = 0; h < heads; ++h) {
                        const T* x1 = xp + r * block + h * d;
                        T* o1 = o + r * block + h * d;
                        for (int64_t i = 0; i < half; ++i) {
                            const T si = inverse ? -s[i] : s[i];
                            o1[i] = x1[i] * c[i] - x1[half + i] * si;
                            o1[half + i] = x1[half + i] * c[i] + x1[i] * si;
                        }
                    }
                }
            }
        });
    });
}

}  // namespace latte::cpu
