// The only file that includes cblas.h: loads OpenBLAS (dlopen, at first use, after choosing its
// kernels for this CPU: backends/cpu/cpu_features.h) and runs gemm for every batch of a GemmArgs.
// Loading it ourselves rather than linking it is what lets the choice come first: OpenBLAS reads
// OPENBLAS_CORETYPE once, while it is being loaded.
#include <cblas.h>
#include <link.h>

#include <algorithm>
#include <string>

#include "backends/cpu/blas.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/shared_library.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

struct OpenBlas {
    std::string path;
    decltype(&cblas_sgemm) sgemm = nullptr;
    decltype(&cblas_dgemm) dgemm = nullptr;
    void (*set_threads)(int) = nullptr;
    int (*get_threads)() = nullptr;
    char* (*corename)() = nullptr;
    char* (*config)() = nullptr;
};

OpenBlas load_openblas() {
    void* handle = open_library("blas", {"libopenblas.so.0", "libopenblas.so"}, "libopenblas0");
    OpenBlas lib;
    link_map* map = nullptr;
    lib.path = ::dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr ? map->l_name : "libopenblas.so.0";
    bind_symbol(handle, "blas", "cblas_sgemm", lib.sgemm);
    bind_symbol(handle, "blas", "cblas_dgemm", lib.dgemm);
    bind_symbol(handle, "blas", "openblas_set_num_threads", lib.set_threads, false);
    bind_symbol(handle, "blas", "openblas_get_num_threads", lib.get_threads, false);
    bind_symbol(handle, "blas", "openblas_get_corename", lib.corename, false);
    bind_symbol(handle, "blas", "openblas_get_config", lib.config, false);
    return lib;  // the handle stays open for the life of the process
}

const OpenBlas& openblas() {
    static const OpenBlas lib = load_openblas();
    return lib;
}

// latte's pool runs the parallel loops: OpenBLAS stays at one thread inside them.
void single_threaded(const OpenBlas& lib) {
    if (lib.set_threads && lib.get_threads && lib.get_threads() != 1) lib.set_threads(1);
}

}  // namespace

template <class T>
void gemm_tile(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    check_blas_gemm("matmul (OpenBLAS)", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    const OpenBlas& lib = openblas();
    single_threaded(lib);
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const auto bm = static_cast<blasint>(m), bn = static_cast<blasint>(n), bk = static_cast<blasint>(k);
    if constexpr (std::is_same_v<T, float>)
        lib.sgemm(CblasRowMajor, ta, tb, bm, bn, bk, alpha, a, static_cast<blasint>(lda), b,
                  static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
    else
        lib.dgemm(CblasRowMajor, ta, tb, bm, bn, bk, alpha, a, static_cast<blasint>(lda), b,
                  static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}
template void gemm_tile<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                               int64_t, float, float*, int64_t);
template void gemm_tile<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                const double*, int64_t, double, double*, int64_t);

namespace {

// Rows [0, rows) of C = op(A) op(B) for one product of a GemmArgs.
template <class T>
void gemm_one(const GemmArgs& g, int64_t rows, const T* a, const T* b, T* c) {
    gemm_tile<T>(g.trans_a, g.trans_b, rows, g.n, g.k, static_cast<T>(g.alpha), a, g.lda, b, g.ldb,
                 static_cast<T>(g.beta), c, g.ldc);
}

}  // namespace

// latte's own thread pool runs every parallel loop, gemm included: OpenBLAS is kept at one
// thread, because its threads spin-yield after each call and fight the pool for the cores
// (2-core profile of a small training step: a third of the time in sched_yield).
BlasInfo blas_info() {
    const OpenBlas& lib = openblas();
    BlasInfo info;
    info.library = lib.path;
    info.core = lib.corename ? lib.corename() : "unknown";
    info.config = lib.config ? lib.config() : "unknown";
    info.requested_core = choose_openblas_core();
    return info;
}

void direct_sgemm(int threads, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
    check_blas_gemm("direct_sgemm", false, false, m, n, k, k, n, n);
    const OpenBlas& lib = openblas();
    if (lib.set_threads) lib.set_threads(threads);
    lib.sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(k), b, static_cast<blasint>(n), 0.0f, c,
              static_cast<blasint>(n));
}

void CpuBackend::gemm(const GemmArgs& g) {
    if (g.bf16) return gemm_bf16_batches(g);  // autocast_gemm.cpp
    single_threaded(openblas());
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
