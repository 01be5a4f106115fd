// A bf16 tile product for kernels that multiply small tiles themselves on the calling thread (the
// fused attention under autocast(bf16)): gemm_tile<float>'s contract (blas.h), with the products
// taken of A and B rounded to bf16 (round to nearest even, as round_to_bf16 in bf16_gemm.h) and
// accumulated in float32. On a CPU with AVX512_BF16 it packs op(A) and op(B) into bf16
// pair-interleaved panels (per-thread scratch, no allocation once warm) and runs a vdpbf16ps
// microkernel; elsewhere it rounds the operands to bf16 values in float32 and runs gemm_tile<float>,
// which is the same product: a product of two bf16 values is exact in float32.
#pragma once
#include <cstdint>

namespace latte::cpu {

// C = alpha * op(A) op(B) + beta * C, row-major, op(A) m x k, op(B) k x n, on the calling thread.
// beta == 0 ignores C's old contents (NaN there does not show), as BLAS does; k == 0 gives beta C.
void gemm_tile_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

namespace detail {
// For tests: true runs the portable path (round, then gemm_tile<float>) even where the CPU has
// AVX512_BF16; false restores the normal choice. Affects the calling thread only.
void force_portable_bf16_tile_for_testing(bool portable);
}  // namespace detail

}  // namespace latte::cpu
