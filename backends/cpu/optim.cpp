// The fused optimizer update on the CPU threads.
#include "backends/common/adam_math.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"

namespace latte::cpu {

void CpuBackend::adam_step(const AdamStep& step, DType dtype, int64_t n, void* p, const void* g, void* m, void* v) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* pp = static_cast<T*>(p);
        const T* gp = static_cast<const T*>(g);
        T* mp = static_cast<T*>(m);
        T* vp = static_cast<T*>(v);
        parallel_for(n, 32768, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) adam_element<T>(step, pp[i], gp[i], mp[i], vp[i]);
        });
    });
}

}  // namespace latte::cpu
