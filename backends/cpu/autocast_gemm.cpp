// The CPU backend's bf16 products (autocast). One product, or a batch of large ones, goes to
// gemm_bf16 (bf16_gemm.h: oneDNN on the CPU's bf16 instructions). A batch of small products (the
// per-head ones) is rounded to bf16 and run by the float32 gemm: a product of two bf16 values is
// exact in float32 (8-bit significands), so that is the same bf16 product with float32
// accumulation, while one oneDNN call per small product costs more than the product itself
// (docs/performance.md, "float32 libraries and bf16 products").
#include <algorithm>
#include <vector>

#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

constexpr int64_t kLargeProduct = int64_t{1} << 24;  // multiply-adds from which oneDNN wins (256^3)

// The float32 copy, rounded to bf16, of the matrices at `offsets` (each stored as rows x cols with
// row stride ld) in one buffer; offsets become relative to it.
std::vector<float> rounded_copy(const float* base, std::vector<int64_t>& offsets, int64_t rows, int64_t cols,
                                int64_t ld) {
    const int64_t first = *std::min_element(offsets.begin(), offsets.end());
    const int64_t end = *std::max_element(offsets.begin(), offsets.end()) + (rows - 1) * ld + cols;
    std::vector<float> copy(static_cast<size_t>(end - first));
    parallel_for(end - first, int64_t{1} << 16, [&](int64_t lo, int64_t hi) {
        round_to_bf16(base + first + lo, copy.data() + lo, hi - lo);
    });
    for (int64_t& o : offsets) o -= first;
    return copy;
}

}  // namespace

bool CpuBackend::supports_bf16_products(std::string* why_not) { return bf16_supported(why_not); }

void gemm_bf16_batches(CpuBackend& cpu, const GemmArgs& g) {
    LATTE_CHECK(g.dtype == DType::Float32, "gemm: bf16 products take float32 operands, got ", dtype_name(g.dtype));
    if (g.c_offsets.empty() || g.m == 0 || g.n == 0) return;
    const auto* a = static_cast<const float*>(g.a);
    const auto* b = static_cast<const float*>(g.b);
    auto* c = static_cast<float*>(g.c);
    if (g.c_offsets.size() == 1 || g.m * g.n * g.k >= kLargeProduct) {
        for (size_t i = 0; i < g.c_offsets.size(); ++i)
            gemm_bf16(g.trans_a, g.trans_b, g.m, g.n, g.k, static_cast<float>(g.alpha), a + g.a_offsets[i], g.lda,
                      b + g.b_offsets[i], g.ldb, static_cast<float>(g.beta), c + g.c_offsets[i], g.ldc);
        return;
    }
    GemmArgs rounded = g;
    rounded.bf16 = false;
    if (g.k == 0) return cpu.gemm(rounded);  // no products: C = beta C
    // Stored shapes: A is m x k (k x m when transposed), B is k x n (n x k when transposed).
    const std::vector<float> ra = rounded_copy(a, rounded.a_offsets, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda);
    const std::vector<float> rb = rounded_copy(b, rounded.b_offsets, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb);
    rounded.a = ra.data();
    rounded.b = rb.data();
    cpu.gemm(rounded);
}

}  // namespace latte::cpu
