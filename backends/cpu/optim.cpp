// The fused optimizer update on the CPU threads.
#include <cmath>

#include "backends/common/adam_math.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"

namespace latte::cpu {
namespace {

// float32 parameters: the update in float32 arithmetic, as PyTorch's fused CPU Adam computes it
// (denominator sqrt(v) / sqrt(bias2) + eps, here as sqrt(v) times a precomputed 1 / sqrt(bias2),
// within an ulp of it; step lr / bias1), in loops the compiler vectorizes; adam_element<float>
// goes through double per element and took 5% of a language-model step.
struct AdamFloat {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay, step_size, inv_sqrt_bias2;
    explicit AdamFloat(const AdamStep& s)
        : beta1(float(s.beta1)), one_minus_beta1(float(1 - s.beta1)), beta2(float(s.beta2)),
          one_minus_beta2(float(1 - s.beta2)), eps(float(s.eps)), weight_decay(float(s.weight_decay)),
          decay(float(1 - s.lr * s.weight_decay)), step_size(float(s.lr / s.bias1)),
          inv_sqrt_bias2(float(1 / std::sqrt(s.bias2))) {}
};

__attribute__((target_clones("avx512f", "avx2", "default")))
void adam_float(const AdamFloat& a, bool decoupled, int64_t n, float* p, const float* g, float* m, float* v) {
    // One loop per rule, so that each vectorizes without a branch inside.
    if (decoupled) {
        for (int64_t i = 0; i < n; ++i) {
            const float pi = p[i] * a.decay, gi = g[i];
            m[i] = a.beta1 * m[i] + a.one_minus_beta1 * gi;
            v[i] = a.beta2 * v[i] + a.one_minus_beta2 * gi * gi;
            p[i] = pi - a.step_size * (m[i] / (std::sqrt(v[i]) * a.inv_sqrt_bias2 + a.eps));
        }
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const float pi = p[i], gi = g[i] + a.weight_decay * pi;
            m[i] = a.beta1 * m[i] + a.one_minus_beta1 * gi;
            v[i] = a.beta2 * v[i] + a.one_minus_beta2 * gi * gi;
            p[i] = pi - a.step_size * (m[i] / (std::sqrt(v[i]) * a.inv_sqrt_bias2 + a.eps));
        }
    }
}

}  // namespace

void CpuBackend::adam_step(const AdamStep& step, DType dtype, int64_t n, void* p, const void* g, void* m, void* v) {
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* pp = static_cast<T*>(p);
        const T* gp = static_cast<const T*>(g);
        T* mp = static_cast<T*>(m);
        T* vp = static_cast<T*>(v);
        if constexpr (std::is_same_v<T, float>) {
            const AdamFloat a(step);
            parallel_for(n, 32768, [&](int64_t begin, int64_t end) {
                adam_float(a, step.decoupled, end - begin, pp + begin, gp + begin, mp + begin, vp + begin);
            });
        } else {
            parallel_for(n, 32768, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) adam_element<T>(step, pp[i], gp[i], mp[i], vp[i]);
            });
        }
    });
}

}  // namespace latte::cpu
