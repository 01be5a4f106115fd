// oneDNN's matmul primitive, loaded at run time (libdnnl.so.2) like OpenBLAS (blas.cpp), so that
// neither variant of the installed library asks its users to link oneDNN. A build configured
// without oneDNN's headers (cmake/LatteDnnl.cmake) compiles the same functions as refusals.
#pragma once
#include <cstdint>
#include <string>

namespace latte::cpu {

// The element type of A and B: float32, or bf16 (raw 16-bit patterns, the top half of a float32).
enum class DnnlInput { f32, bf16 };

// Whether oneDNN can run here: built with its headers and libdnnl.so.2 loads. why_not says which
// part is missing.
bool dnnl_available(std::string* why_not = nullptr);

// "oneDNN 2.6.3 (/usr/lib/.../libdnnl.so.2)", or "" when unavailable.
std::string dnnl_version();

// C (float32) = alpha * op(A) op(B) + beta * C, row-major as gemm_tile (blas.h): op(A) m x k,
// op(B) k x n, accumulated in float32. One primitive per shape is created once and cached; the
// product runs on oneDNN's OpenMP threads, as many as latte's pool (cpu::num_threads()).
// Thread-safe. Throws latte::Error naming the shapes when oneDNN is unavailable or refuses them.
void dnnl_matmul(DnnlInput input, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const void* a, int64_t lda, const void* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The implementation oneDNN picks for a shape (e.g. "brg:avx512_core_bf16"), for labels.
std::string dnnl_matmul_impl(DnnlInput input, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k);

}  // namespace latte::cpu
