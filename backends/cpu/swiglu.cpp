// SwiGLU's pointwise part in one pass (Backend::swiglu_fwd / swiglu_bwd): float32 through the
// vectorized loops of vector_math.h, float64 through the shared pointwise math, both with the
// expressions silu then mul would evaluate.
#include "backends/common/pointwise.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/vector_math.h"

namespace latte::cpu {
namespace {
constexpr int64_t kGrain = 16384;  // elements per task at least
}  // namespace

void CpuBackend::swiglu_fwd(void* out, const void* gate, const void* up, DType dtype, int64_t n) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* o = static_cast<T*>(out);
        const T* x = static_cast<const T*>(gate);
        const T* u = static_cast<const T*>(up);
        parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
            if constexpr (std::is_same_v<T, float>) {
                swiglu_forward(o + lo, x + lo, u + lo, hi - lo);
            } else {
                for (int64_t i = lo; i < hi; ++i) o[i] = apply_unary<T>(UnaryOp::Silu, x[i], T(0)) * u[i];
            }
        });
    });
}

void CpuBackend::swiglu_bwd(void* dgate, void* dup, const void* g, const void* gate, const void* up, DType dtype,
                            int64_t n) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* dx = static_cast<T*>(dgate);
        T* du = static_cast<T*>(dup);
        const T* gp = static_cast<const T*>(g);
        const T* x = static_cast<const T*>(gate);
        const T* u = static_cast<const T*>(up);
        parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
            if constexpr (std::is_same_v<T, float>) {
                swiglu_backward(dx + lo, du + lo, gp + lo, x + lo, u + lo, hi - lo);
            } else {
                for (int64_t i = lo; i < hi; ++i) {
                    du[i] = gp[i] * apply_unary<T>(UnaryOp::Silu, x[i], T(0));
                    dx[i] = (gp[i] * u[i]) * apply_unary<T>(UnaryOp::SiluGrad, x[i], T(0));
                }
            }
        });
    });
}

}  // namespace latte::cpu
