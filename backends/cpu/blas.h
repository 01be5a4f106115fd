// One row-major gemm on the calling thread, for kernels that multiply small tiles themselves
// (fused attention). blas.cpp stays the only file that includes cblas.h.
#pragma once
#include <cstdint>
#include <string>

namespace latte::cpu {

// C = alpha * op(A) op(B) + beta * C, with op(A) m x k and op(B) k x n; T is float or double.
template <class T>
void gemm_tile(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// The loaded OpenBLAS: its file, the kernels it runs (openblas_get_corename), its build
// config, and the core latte asked for ("" when it let OpenBLAS choose).
struct BlasInfo {
    std::string library, core, config, requested_core;
};
BlasInfo blas_info();

// C = A B (row-major float32, m x k times k x n) as one cblas_sgemm on `threads` OpenBLAS
// threads: the direct call that benchmarks compare latte's matmul with.
void direct_sgemm(int threads, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c);

}  // namespace latte::cpu
