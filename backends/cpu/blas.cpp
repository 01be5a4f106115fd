// The only file that includes cblas.h: gemm for every batch of a GemmArgs.
#include <cblas.h>

#include <algorithm>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

// Multiply-adds below which a loop of products stays on one thread.
constexpr int64_t kGemmGrain = 1 << 20;

// Rows [0, rows) of C = op(A) op(B) for one product.
template <class T>
void gemm_one(const GemmArgs& g, int64_t rows, const T* a, const T* b, T* c) {
    const CBLAS_TRANSPOSE ta = g.trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = g.trans_b ? CblasTrans : CblasNoTrans;
    const auto m = static_cast<blasint>(rows), n = static_cast<blasint>(g.n), k = static_cast<blasint>(g.k);
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

// latte's own thread pool runs every parallel loop, gemm included: OpenBLAS is kept at one
// thread, because its threads spin-yield after each call and fight the pool for the cores
// (2-core profile of a small training step: a third of the time in sched_yield).
void CpuBackend::gemm(const GemmArgs& g) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    dispatch(g.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        const T* a = static_cast<const T*>(g.a);
        const T* b = static_cast<const T*>(g.b);
        T* c = static_cast<T*>(g.c);
        const int64_t batches = static_cast<int64_t>(g.c_offsets.size());
        const int64_t work = g.m * g.n * std::max<int64_t>(g.k, 1);  // multiply-adds per product
        if (batches >= num_threads() || batches * work < kGemmGrain) {
            // Whole products per thread.
            parallel_for(batches, std::max<int64_t>(1, kGemmGrain / std::max<int64_t>(work, 1)), [&](int64_t lo, int64_t hi) {
                for (int64_t i = lo; i < hi; ++i)
                    gemm_one<T>(g, g.m, a + g.a_offsets[i], b + g.b_offsets[i], c + g.c_offsets[i]);
            });
            return;
        }
        // Few large products: split each one's rows of C across the threads.
        for (int64_t i = 0; i < batches; ++i) {
            const T* ai = a + g.a_offsets[i];
            const T* bi = b + g.b_offsets[i];
            T* ci = c + g.c_offsets[i];
            parallel_for(g.m, std::max<int64_t>(1, kGemmGrain / std::max<int64_t>(g.n * g.k, 1)), [&](int64_t lo, int64_t hi) {
                // Rows lo..hi of op(A): row stride lda, or column offset when A is transposed.
                const T* a_rows = g.trans_a ? ai + lo : ai + lo * g.lda;
                gemm_one<T>(g, hi - lo, a_rows, bi, ci + lo * g.ldc);
            });
        }
    });
}

}  // namespace latte::cpu
