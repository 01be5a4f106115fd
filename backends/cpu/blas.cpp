// The only file that includes cblas.h: gemm for every batch of a GemmArgs.
#include <cblas.h>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

template <class T>
void gemm_one(const GemmArgs& g, const T* a, const T* b, T* c) {
    const CBLAS_TRANSPOSE ta = g.trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = g.trans_b ? CblasTrans : CblasNoTrans;
    const auto m = static_cast<blasint>(g.m), n = static_cast<blasint>(g.n), k = static_cast<blasint>(g.k);
    const auto lda = static_cast<blasint>(g.lda), ldb = static_cast<blasint>(g.ldb),
               ldc = static_cast<blasint>(g.ldc);
    if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, static_cast<float>(g.alpha), a, lda, b, ldb,
                    static_cast<float>(g.beta), c, ldc);
    } else {
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, g.alpha, a, lda, b, ldb, g.beta, c, ldc);
    }
}

}  // namespace

void CpuBackend::gemm(const GemmArgs& g) {
    dispatch(g.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        const T* a = static_cast<const T*>(g.a);
        const T* b = static_cast<const T*>(g.b);
        T* c = static_cast<T*>(g.c);
        for (size_t i = 0; i < g.c_offsets.size(); ++i)
            gemm_one<T>(g, a + g.a_offsets[i], b + g.b_offsets[i], c + g.c_offsets[i]);
    });
}

}  // namespace latte::cpu
