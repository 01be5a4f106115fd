// gemm_bf16: on a CPU with AVX512_BF16 and no AMX, latte's vdpbf16ps kernel (bf16_tile.h) on
// latte's pool (C's rows, columns or, for a long k, parts of k per thread), rounding while it
// packs; with AMX, rounds A and B to bf16 (on latte's pool) into per-thread buffers and runs
// oneDNN's bf16 matmul into the float32 C.
#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/bf16_tile.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/dnnl_matmul.h"
#include "backends/cpu/parallel.h"
#include "core/backend.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

std::mutex refusal_mutex;
std::string refusal_for_testing;

bool has_amx_bf16() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("amx-bf16");
}

// oneDNN runs the products where the CPU has AMX (its tile units outrun vdpbf16ps several times
// over) and oneDNN loads; latte's own kernel (bf16_tile.h) on latte's pool runs them elsewhere.
bool products_on_onednn() {
    static const bool yes = has_amx_bf16() && dnnl_available(nullptr);
    return yes;
}

// Why bf16 products cannot run on this machine and build, or "" when they can (asked once).
const std::string& real_refusal() {
    static const std::string why = [] {
        const CpuFeatures f = cpu_features();
        if (f.avx512_bf16) return std::string();
        if (!has_amx_bf16()) return std::string("this CPU (") + f.model + ") has neither AVX512_BF16 nor AMX-BF16";
        std::string dnnl_why;
        if (!dnnl_available(&dnnl_why)) return "this CPU has AMX-BF16 but not AVX512_BF16, and " + dnnl_why;
        return std::string();
    }();
    return why;
}

std::string refusal() {
    {
        std::lock_guard<std::mutex> lock(refusal_mutex);
        if (!refusal_for_testing.empty()) return refusal_for_testing;
    }
    return real_refusal();
}

// Sixteen floats at a time with vcvtneps2bf16 (round to nearest even, as to_bf16, except that it
// reads subnormal inputs as zero: they are below bf16's useful range anyway).
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"))) void to_bf16_avx512(const float* src, uint16_t* dst,
                                                                                      int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<const __m256i&>(v));
    }
    if (i < n) {
        const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
        const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i));
        _mm256_mask_storeu_epi16(dst + i, mask, reinterpret_cast<const __m256i&>(v));
    }
}

// The same rounding, widened back to float32 (bf16 is float32's upper half).
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"))) void round_avx512(const float* src, float* dst,
                                                                                   int64_t n) {
    int64_t i = 0;
    for (; i < n; i += 16) {
        const __mmask16 mask = n - i >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
        const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i));
        // The maskz forms: GCC 12 warns about the plain ones' undefined pass-through operand.
        const __m512i wide =
            _mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, reinterpret_cast<const __m256i&>(v)), 16);
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_castsi512_ps(wide));
    }
}

void to_bf16_scalar(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = to_bf16(src[i]);
}

// The stored rows x cols matrix (row stride ld) as a dense bf16 one, rows split over the pool.
void convert(const float* src, int64_t rows, int64_t cols, int64_t ld, std::vector<uint16_t>& dst) {
    dst.resize(static_cast<size_t>(rows * cols));
    static const bool vector = cpu_features().avx512_bf16;
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(cols, 1));
    parallel_for(rows, grain, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r)
            (vector ? to_bf16_avx512 : to_bf16_scalar)(src + r * ld, dst.data() + r * cols, cols);
    });
}

constexpr int64_t kSplitScratch = int64_t{1} << 22;       // floats of partial products kept at most (16 MiB)

// Split over k: each thread reads only its share of A and B, which come from memory rather than
// cache, instead of every thread reading all of one of them. Part 0 goes to C (with beta), the
// others to scratch kept by the calling thread (at most kSplitScratch floats), then added into C.
// The sums' order follows the number of parts, so results depend on the thread count.
void gemm_bf16_split_k(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                       int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int64_t parts) {
    const int64_t chunk = (k + parts - 1) / parts;
    parts = (k + chunk - 1) / chunk;  // every part has some of k
    thread_local std::vector<float> scratch;
    if (scratch.size() < static_cast<size_t>((parts - 1) * m * n)) scratch.resize(static_cast<size_t>((parts - 1) * m * n));
    float* partial = scratch.data();
    parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t t = lo; t < hi; ++t) {
            const int64_t k0 = t * chunk, kb = std::min(chunk, k - k0);
            const float* at = trans_a ? a + k0 * lda : a + k0;  // op(A)'s columns k0.., op(B)'s rows
            const float* bt = trans_b ? b + k0 : b + k0 * ldb;
            if (t == 0)
                gemm_tile_bf16(trans_a, trans_b, m, n, kb, alpha, at, lda, bt, ldb, beta, c, ldc);
            else
                gemm_tile_bf16(trans_a, trans_b, m, n, kb, alpha, at, lda, bt, ldb, 0.0f, partial + (t - 1) * m * n, n);
        }
    });
    parallel_for(m, row_grain(n), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
            for (int64_t t = 1; t < parts; ++t) {
                const float* src = partial + (t - 1) * m * n + i * n;
                float* dst = c + i * ldc;
                for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
            }
    });
}

// The product on latte's pool with gemm_tile_bf16. C's rows, or its columns when it is wider than
// tall, split over the threads; a product whose k is long beside m and n (a weight gradient: k
// counts tokens) is split over k instead (gemm_bf16_split_k).
void gemm_bf16_on_pool(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                       int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    // Split k when it is long and there is work for every thread, into as many parts as threads
    // while their partial products fit in kSplitScratch.
    const int64_t parts = std::min<int64_t>(num_threads(), 1 + kSplitScratch / std::max<int64_t>(m * n, 1));
    if (parts > 1 && k >= 4 * std::max(m, n) && m * n * k >= parts * kGemmGrain)
        return gemm_bf16_split_k(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, parts);
    // Whole microkernel blocks per thread: 8 rows of C, or 32 columns where C is wider than tall.
    const bool by_rows = m >= n;
    const int64_t unit = by_rows ? 8 : 32, extent = by_rows ? m : n;
    const int64_t per_unit = unit * (by_rows ? n : m) * k;
    parallel_for((extent + unit - 1) / unit, std::max<int64_t>(1, kGemmGrain / std::max<int64_t>(per_unit, 1)),
                 [&](int64_t lo, int64_t hi) {
                     const int64_t r0 = lo * unit, r1 = std::min(hi * unit, extent);
                     if (by_rows)  // rows r0..r1 of op(A): a row offset, or a column offset when A is transposed
                         gemm_tile_bf16(trans_a, trans_b, r1 - r0, n, k, alpha, trans_a ? a + r0 : a + r0 * lda, lda,
                                        b, ldb, beta, c + r0 * ldc, ldc);
                     else  // columns r0..r1 of op(B)
                         gemm_tile_bf16(trans_a, trans_b, m, r1 - r0, k, alpha, a, lda,
                                        trans_b ? b + r0 * ldb : b + r0, ldb, beta, c + r0, ldc);
                 });
}

}  // namespace

uint16_t to_bf16(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
    bits += 0x7fffu + ((bits >> 16) & 1u);  // ties go to the even upper half
    return static_cast<uint16_t>(bits >> 16);
}

void round_to_bf16(const float* src, float* dst, int64_t n) {
    static const bool vector = cpu_features().avx512_bf16;
    if (vector) return round_avx512(src, dst, n);
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = uint32_t{to_bf16(src[i])} << 16;
        std::memcpy(dst + i, &bits, sizeof bits);
    }
}

bool bf16_supported(std::string* why_not) {
    const std::string why = refusal();
    if (why_not) *why_not = why;
    return why.empty();
}

std::string bf16_backend_name() {
    const std::string why = refusal();
    if (!why.empty()) return "none (" + why + ")";
    if (products_on_onednn())
        return dnnl_version() + " matmul " + dnnl_matmul_impl(DnnlInput::bf16, false, false, 256, 256, 256);
    return "latte's vdpbf16ps kernel on latte's pool";
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    const std::string why = refusal();
    LATTE_CHECK(why.empty(), "gemm_bf16: a product of (", m, "x", k, ") and (", k, "x", n,
                ") in bf16 cannot run here: ", why, "; use the float32 product instead");
    check_blas_gemm("gemm_bf16", trans_a, trans_b, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0)  // no products: C = beta * C (beta 0 clears C, as BLAS does), as the tile kernel does it
        return gemm_tile_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (products_on_onednn()) return gemm_bf16_onednn(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    gemm_bf16_on_pool(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_bf16_onednn(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                      int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    thread_local std::vector<uint16_t> a16, b16;
    // Stored shapes: A is k x m when transposed, B is n x k; the dense copies keep that layout.
    const int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    const int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    convert(a, a_rows, a_cols, lda, a16);
    convert(b, b_rows, b_cols, ldb, b16);
    dnnl_matmul(DnnlInput::bf16, trans_a, trans_b, m, n, k, alpha, a16.data(), a_cols, b16.data(), b_cols, beta, c,
                ldc);
}

namespace detail {
void set_bf16_refusal_for_testing(const std::string& reason) {
    std::lock_guard<std::mutex> lock(refusal_mutex);
    refusal_for_testing = reason;
}
}  // namespace detail

}  // namespace latte::cpu
