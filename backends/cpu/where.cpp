// where(cond, a, b): a strided select over four views of one shape.
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/strided.h"

namespace latte::cpu {

void CpuBackend::where(const View& dst, const View& cond, const View& a, const View& b) {
    dispatch(dst.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        auto plan = make_plan<4>(dst.shape, {&dst.strides, &cond.strides, &a.strides, &b.strides});
        T* d = static_cast<T*>(dst.data);
        const T* c = static_cast<const T*>(cond.data);
        const T* pa = static_cast<const T*>(a.data);
        const T* pb = static_cast<const T*>(b.data);
        parallel_spans(plan, [&](const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& st, int64_t n) {
            for (int64_t i = 0; i < n; ++i)
                d[off[0] + i * st[0]] =
                    c[off[1] + i * st[1]] != T(0) ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
        });
    });
}

}  // namespace latte::cpu
