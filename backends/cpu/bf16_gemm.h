// bf16 products with float32 accumulation, for autocast: A and B arrive as float32, are rounded to
// bf16 (round to nearest even) for the product, and C stays float32. Runs on latte's own vdpbf16ps
// kernel where the CPU has AVX512_BF16, on oneDNN's bf16 matmul (dnnl_matmul.h) where it has
// AMX-BF16; elsewhere bf16_supported() is false and gemm_bf16 refuses, so a caller falls back to
// float32 knowing why.
#pragma once
#include <cstdint>
#include <string>

namespace latte::cpu {

// Whether gemm_bf16 can run here; why_not names what is missing (the CPU's bf16 instructions, or
// on an AMX-only CPU oneDNN: not built in, or libdnnl.so.2 not loadable).
bool bf16_supported(std::string* why_not = nullptr);

// C = alpha * op(A) op(B) + beta * C, row-major like gemm_tile (blas.h): op(A) m x k, op(B) k x n,
// float32 arrays whose values are rounded to bf16 for the product, accumulated in float32.
// Thread-safe; multithreaded internally (latte's pool; with AMX, oneDNN's threads multiply).
// Throws latte::Error naming the shapes when unsupported or the sizes are invalid.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The same product on oneDNN's bf16 matmul, A and B rounded into per-thread bf16 copies on
// latte's pool first: gemm_bf16's path on AMX CPUs, and bench_ops' comparison on any CPU with bf16.
// m, n, k > 0 and the sizes checked (gemm_bf16 does both); throws when oneDNN is unavailable.
void gemm_bf16_onednn(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// What runs bf16 products: "latte's vdpbf16ps kernel on latte's pool", or with AMX e.g.
// "oneDNN 2.6.3 (...) matmul brg:avx512_core_amx", or "none (<why not>)".
std::string bf16_backend_name();

// The bf16 bit pattern nearest x (ties to even; NaN stays NaN): how gemm_bf16 rounds its inputs.
uint16_t to_bf16(float x);
// dst[i] = src[i] rounded to bf16 as gemm_bf16 rounds it, kept as a float32 value (n elements,
// on the calling thread).
void round_to_bf16(const float* src, float* dst, int64_t n);

namespace detail {
// For tests: a non-empty reason makes bf16_supported() false with it, as on a CPU without bf16;
// an empty one restores the real answer.
void set_bf16_refusal_for_testing(const std::string& reason);
}  // namespace detail

}  // namespace latte::cpu
