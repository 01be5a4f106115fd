// gemm_tile_bf16 (bf16_tile.h). With AVX512_BF16: op(A) and op(B) are rounded to bf16
// (vcvtne2ps2bf16: round to nearest even, as round_to_bf16) and packed into panels whose 32-bit
// words hold a pair of consecutive k (k padded to even with zero):
//   A: panels of kMr rows, word [p * kMr + r]      = (A(r, 2p), A(r, 2p + 1)), rows past m zero
//      (A transposed; A itself keeps its rows, as rows of words, and needs no transpose);
//   B: panels of kNr columns, word [p * kNr + c]   = (B(2p, c), B(2p + 1, c)), columns past n zero.
// The microkernel keeps a kMr x kNr block of C in zmm accumulators; each k pair broadcasts one A
// word per row and runs vdpbf16ps against two B vectors (products of bf16 values are exact;
// the sums are float32). Panels live in per-thread scratch that grows and is never freed.
#include "backends/cpu/bf16_tile.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/blas.h"
#include "backends/cpu/cpu_features.h"
#include "core/backend.h"

namespace latte::cpu {
namespace {

constexpr int kMr = 8;   // rows of C per microkernel
constexpr int kNr = 32;  // columns of C per microkernel (two zmm)
// Cache blocks: k in steps of kKc, A's rows in steps of kMc (an A block of kMc x kKc / 2 words,
// 256 KiB, stays in L2; each B panel is 64 KiB). Measured on Zen 4 (bench_ops gemm/*/bf16, 2
// threads): kKc 1024 ran the medium and LM Linear shapes 20-35% faster than kKc 256 (16 KiB B
// panels, in L1), whose extra C passes cost more than the L2 reads; kMc 64-128 beat 256.
constexpr int64_t kKc = 1024;
constexpr int64_t kMc = 128;

thread_local bool force_portable = false;

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

#define LATTE_BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))

LATTE_BF16_TARGET inline __mmask16 first_lanes(int64_t count) {
    if (count <= 0) return 0;
    return count >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << count) - 1);
}

// Sixteen words w[j] = (bf16(lo[j]), bf16(hi[j])) from two vectors of sixteen floats.
LATTE_BF16_TARGET inline __m512i pair_words(__m512 lo, __m512 hi) {
    // vcvtne2ps2bf16 puts the second operand's sixteen values in the low half.
    const __m512bh both = _mm512_cvtne2ps_pbh(hi, lo);
    const __m512i index = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                           6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_maskz_permutexvar_epi16(~__mmask32(0), index, reinterpret_cast<const __m512i&>(both));
}

// Sixteen words of pair p into their panel(s) from `out` (word (p, first column) at out + p * Block;
// Block 8: words 8-15 go to the next panel, kp * 8 words on, when `second`).
template <int Block>
LATTE_BF16_TARGET inline void store_words(uint32_t* out, int64_t kp, int64_t p, bool second, __m512i words) {
    if constexpr (Block >= 16) {
        _mm512_storeu_si512(out + p * Block, words);
    } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p * 8), _mm512_maskz_extracti64x4_epi64(0xff, words, 0));
        if (second)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kp * 8 + p * 8),
                                _mm512_maskz_extracti64x4_epi64(0xff, words, 1));
    }
}

// Sixteen words of pair p of a k x width matrix stored by rows (row stride ld), from column j
// under `mask`: (row 2p, row 2p + 1), the second zero past k.
LATTE_BF16_TARGET inline __m512i pair_at(const float* src, int64_t ld, int64_t k, int64_t p, int64_t j,
                                         __mmask16 mask) {
    const float* r0 = src + 2 * p * ld + j;
    return pair_words(_mm512_maskz_loadu_ps(mask, r0),
                      2 * p + 1 < k ? _mm512_maskz_loadu_ps(mask, r0 + ld) : _mm512_setzero_ps());
}

// Packs a stored k x width matrix (row stride ld; k runs down the rows: B, or A transposed) into
// panels of Block columns of words. Panels of 16 or more (B) take the pairs outermost, reading the
// source row by row. Panels of 8 (A transposed: the dV/dK tiles' P^T and dS^T, weight gradients)
// take sixteen columns at a time down the pairs, so that each pair of 32-byte stores continues
// its two panels: the pairs outermost, with masked 64-byte stores straddling two panels, ran
// that packing at half the speed on Zen 4.
template <int Block>
LATTE_BF16_TARGET void pack_k_rows(const float* src, int64_t ld, int64_t k, int64_t width, uint32_t* dst) {
    static_assert(Block == 8 || Block % 16 == 0, "panels of 8 or of a multiple of 16");
    const int64_t kp = (k + 1) / 2, width_pad = round_up(width, Block);
    if constexpr (Block >= 16) {
        for (int64_t p = 0; p < kp; ++p)
            for (int64_t j = 0; j < width_pad; j += 16)
                store_words<Block>(dst + (j / Block) * kp * Block + j % Block, kp, p, false,
                                   pair_at(src, ld, k, p, j, first_lanes(width - j)));
    } else {
        for (int64_t j = 0; j < width_pad; j += 16) {
            const __mmask16 mask = first_lanes(width - j);
            uint32_t* out = dst + (j / 8) * kp * 8;  // word (p, j) at out + p * 8
            const bool second = j + 8 < width_pad;  // words 8-15 go to the next panel
            for (int64_t p = 0; p < kp; ++p) store_words<8>(out, kp, p, second, pair_at(src, ld, k, p, j, mask));
        }
    }
}

// Transposes sixteen rows of sixteen 32-bit words in place. (The maskz forms, all lanes: GCC 12
// warns about the plain ones' undefined pass-through operand.)
LATTE_BF16_TARGET inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_maskz_unpacklo_epi32(0xffff, r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_maskz_unpackhi_epi32(0xffff, r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // r[4i + e], lane L: rows 4i..4i+3 of column 4L + e
        r[4 * i] = _mm512_maskz_unpacklo_epi64(0xff, t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_maskz_unpackhi_epi64(0xff, t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_maskz_unpacklo_epi64(0xff, t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_maskz_unpackhi_epi64(0xff, t[4 * i + 1], t[4 * i + 3]);
    }
    __m512i out[16];
    for (int e = 0; e < 4; ++e) {
        const __m512i a = _mm512_maskz_shuffle_i32x4(0xffff, r[e], r[4 + e], 0x88),
                      b = _mm512_maskz_shuffle_i32x4(0xffff, r[e], r[4 + e], 0xdd);
        const __m512i c = _mm512_maskz_shuffle_i32x4(0xffff, r[8 + e], r[12 + e], 0x88),
                      d = _mm512_maskz_shuffle_i32x4(0xffff, r[8 + e], r[12 + e], 0xdd);
        out[e] = _mm512_maskz_shuffle_i32x4(0xffff, a, c, 0x88);
        out[8 + e] = _mm512_maskz_shuffle_i32x4(0xffff, a, c, 0xdd);
        out[4 + e] = _mm512_maskz_shuffle_i32x4(0xffff, b, d, 0x88);
        out[12 + e] = _mm512_maskz_shuffle_i32x4(0xffff, b, d, 0xdd);
    }
    for (int i = 0; i < 16; ++i) r[i] = out[i];
}

// Packs a stored width x k matrix (row stride ld; k runs along the rows: A, or B transposed) into
// panels of Block rows of words, sixteen rows by sixteen words at a time.
template <int Block>
LATTE_BF16_TARGET void pack_k_cols(const float* src, int64_t ld, int64_t width, int64_t k, uint32_t* dst) {
    static_assert(Block % 16 == 0, "whole transposed blocks of sixteen words per store");
    const int64_t kp = (k + 1) / 2, width_pad = round_up(width, Block);
    __m512i r[16];
    for (int64_t i = 0; i < width_pad; i += 16) {
        for (int64_t p = 0; p < kp; p += 16) {
            const __mmask16 m0 = first_lanes(k - 2 * p), m1 = first_lanes(k - 2 * p - 16);
            for (int t = 0; t < 16; ++t) {
                if (i + t < width) {
                    const float* row = src + (i + t) * ld + 2 * p;
                    const __m512bh both =
                        _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, row + 16), _mm512_maskz_loadu_ps(m0, row));
                    r[t] = reinterpret_cast<const __m512i&>(both);
                } else {
                    r[t] = _mm512_setzero_si512();
                }
            }
            transpose16(r);
            const int64_t words = std::min<int64_t>(16, kp - p);
            uint32_t* out = dst + (i / Block) * kp * Block + i % Block;  // word (p, i) at out + p * Block
            for (int64_t q = 0; q < words; ++q) _mm512_storeu_si512(out + (p + q) * Block, r[q]);
        }
    }
}

// A stored m x k (k along its rows) as rows of words, row r's word p at dst[r * stride + p], stride
// kp rounded up to 16 (the words past kp are never read); rows m to the next multiple of kMr zero.
// No transpose: the microkernel broadcasts each row's words from its own row.
LATTE_BF16_TARGET void pack_a_rows(const float* src, int64_t ld, int64_t m, int64_t k, int64_t stride,
                                   uint32_t* dst) {
    const int64_t kp = (k + 1) / 2;
    for (int64_t r = 0; r < m; ++r) {
        const float* row = src + r * ld;
        for (int64_t p = 0; p < kp; p += 16) {
            const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(k - 2 * p), row + 2 * p);
            const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(k - 2 * p - 16), row + 2 * p + 16);
            const __m512bh both = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(dst + r * stride + p, reinterpret_cast<const __m512i&>(both));
        }
    }
    const int64_t m_pad = round_up(m, kMr);
    if (m_pad > m) std::memset(dst + m * stride, 0, static_cast<size_t>((m_pad - m) * stride) * sizeof(uint32_t));
}

// One row of the C block: alpha * acc + beta * C, under the column masks.
LATTE_BF16_TARGET inline void store_row(float* row, __m512 acc0, __m512 acc1, __mmask16 m0, __mmask16 m1, __m512 va,
                                        __m512 vb, bool keep) {
    __m512 x0 = _mm512_mul_ps(va, acc0), x1 = _mm512_mul_ps(va, acc1);
    if (keep) {  // beta 0 ignores C, as BLAS does
        x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), x0);
        x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), x1);
    }
    _mm512_mask_storeu_ps(row, m0, x0);
    _mm512_mask_storeu_ps(row + 16, m1, x1);
}

// C block (rows x cols of it valid, rows <= kMr, cols <= kNr) = alpha * A panel B panel + beta C.
// A's word p of row r is at a[r * a_row + p * APair]: a panel (a_row 1, APair kMr) or rows of
// words (a_row stride, APair 1). APair is a template argument and the rows are stored by a switch
// that falls through, so that the compiler keeps the sixteen accumulators in registers: with a
// loop that breaks at `rows`, GCC kept them on the stack around the k loop, which cost a fifth of
// the kernel's time on the attention's k = 32 products.
template <int APair>
LATTE_BF16_TARGET void microkernel(int64_t kp, const uint32_t* a, int64_t a_row, const uint32_t* b, float* c,
                                   int64_t ldc, int64_t rows, int64_t cols, float alpha, float beta) {
    static_assert(kMr == 8, "the store switch below has eight cases");
    __m512 acc[kMr][2];
#pragma GCC unroll 8
    for (int r = 0; r < kMr; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kp; ++p) {
        const __m512i b0 = _mm512_loadu_si512(b + p * kNr), b1 = _mm512_loadu_si512(b + p * kNr + 16);
        const __m512bh v0 = reinterpret_cast<const __m512bh&>(b0), v1 = reinterpret_cast<const __m512bh&>(b1);
#pragma GCC unroll 8
        for (int r = 0; r < kMr; ++r) {
            const __m512i aw = _mm512_set1_epi32(static_cast<int>(a[r * a_row + p * APair]));
            const __m512bh av = reinterpret_cast<const __m512bh&>(aw);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, v0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, v1);
        }
    }
    const __mmask16 m0 = first_lanes(cols), m1 = first_lanes(cols - 16);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const bool keep = beta != 0.0f;
    switch (rows) {  // the last valid row first, falling through to row 0
#define LATTE_STORE_ROW(r) \
    case r + 1:            \
        store_row(c + r * ldc, acc[r][0], acc[r][1], m0, m1, va, vb, keep);
        LATTE_STORE_ROW(7) [[fallthrough]];
        LATTE_STORE_ROW(6) [[fallthrough]];
        LATTE_STORE_ROW(5) [[fallthrough]];
        LATTE_STORE_ROW(4) [[fallthrough]];
        LATTE_STORE_ROW(3) [[fallthrough]];
        LATTE_STORE_ROW(2) [[fallthrough]];
        LATTE_STORE_ROW(1) [[fallthrough]];
        LATTE_STORE_ROW(0) break;
#undef LATTE_STORE_ROW
        default: break;
    }
}

LATTE_BF16_TARGET void gemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                                   int64_t ldc, uint32_t* a_pack, uint32_t* b_pack) {
    // Blocks of k (the first one applies beta, the later ones add to C), and within each, blocks
    // of A's rows: the A block stays in L2 while each B panel (64 KiB, L2 too) meets all of it.
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
        const int64_t kb = std::min(kKc, k - k0), kp = (kb + 1) / 2, a_stride = round_up(kp, 16);
        const float block_beta = k0 == 0 ? beta : 1.0f;
        if (trans_b)
            pack_k_cols<kNr>(b + k0, ldb, n, kb, b_pack);
        else
            pack_k_rows<kNr>(b + k0 * ldb, ldb, kb, n, b_pack);
        for (int64_t i0 = 0; i0 < m; i0 += kMc) {
            const int64_t mb = std::min(kMc, m - i0);
            if (trans_a)
                pack_k_rows<kMr>(a + k0 * lda + i0, lda, kb, mb, a_pack);
            else
                pack_a_rows(a + i0 * lda + k0, lda, mb, kb, a_stride, a_pack);
            // Where row i's panel starts, and how its words are laid out.
            const int64_t a_block = trans_a ? kMr * kp : kMr * a_stride;
            for (int64_t j = 0; j < n; j += kNr) {
                const uint32_t* bp = b_pack + (j / kNr) * kp * kNr;
                for (int64_t i = 0; i < mb; i += kMr) {
                    const uint32_t* ap = a_pack + (i / kMr) * a_block;
                    float* cp = c + (i0 + i) * ldc + j;
                    const int64_t rows = std::min<int64_t>(kMr, mb - i), cols = std::min<int64_t>(kNr, n - j);
                    if (trans_a)
                        microkernel<kMr>(kp, ap, 1, bp, cp, ldc, rows, cols, alpha, block_beta);
                    else
                        microkernel<1>(kp, ap, a_stride, bp, cp, ldc, rows, cols, alpha, block_beta);
                }
            }
        }
    }
}

#undef LATTE_BF16_TARGET

// Scratch words, 64-byte aligned, grown on demand and kept for the thread's later calls.
uint32_t* scratch(std::vector<uint32_t>& v, int64_t words) {
    const size_t need = static_cast<size_t>(words) + 16;
    if (v.size() < need) v.resize(need);
    auto p = reinterpret_cast<uintptr_t>(v.data());
    return reinterpret_cast<uint32_t*>((p + 63) & ~uintptr_t{63});
}

// The stored rows x cols matrix (row stride ld) rounded to bf16 values, dense, into dst.
void rounded_dense(const float* src, int64_t rows, int64_t cols, int64_t ld, std::vector<float>& dst) {
    if (dst.size() < static_cast<size_t>(rows * cols)) dst.resize(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) round_to_bf16(src + r * ld, dst.data() + r * cols, cols);
}

}  // namespace

void gemm_tile_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    check_blas_gemm("gemm_tile_bf16", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0) {  // no products: C = beta * C, where beta 0 clears C
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    static const bool vector = cpu_features().avx512_bf16;
    if (vector && !force_portable) {
        thread_local std::vector<uint32_t> a_words, b_words;
        const int64_t kp = (std::min(k, kKc) + 1) / 2;
        uint32_t* ap = scratch(a_words, round_up(std::min(m, kMc), kMr) * round_up(kp, 16));
        uint32_t* bp = scratch(b_words, round_up(n, kNr) * kp);
        gemm_avx512(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ap, bp);
        return;
    }
    // Portable: the bf16 values as float32, then the float32 product (exact products, float32 sums).
    thread_local std::vector<float> ra, rb;
    const int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    const int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    rounded_dense(a, a_rows, a_cols, lda, ra);
    rounded_dense(b, b_rows, b_cols, ldb, rb);
    gemm_tile<float>(trans_a, trans_b, m, n, k, alpha, ra.data(), a_cols, rb.data(), b_cols, beta, c, ldc);
}

namespace detail {
void force_portable_bf16_tile_for_testing(bool portable) { force_portable = portable; }
}  // namespace detail

}  // namespace latte::cpu
