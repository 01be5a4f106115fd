// The CPU backend's bf16 products (autocast). One product, or a batch of large ones, goes to
// gemm_bf16 (bf16_gemm.h), which splits each product over the pool. A batch of smaller products
// (the per-head ones) runs whole products per thread with gemm_tile_bf16 (bf16_tile.h), the
// kernel the fused attention's tiles use.
#include <algorithm>

#include "backends/cpu/bf16_gemm.h"
#include "backends/cpu/bf16_tile.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/parallel.h"
#include "core/error.h"

namespace latte::cpu {
namespace {

constexpr int64_t kLargeProduct = int64_t{1} << 24;  // multiply-adds from which one product is split (256^3)

}  // namespace

bool CpuBackend::supports_bf16_products(std::string* why_not) { return bf16_supported(why_not); }

void gemm_bf16_batches(const GemmArgs& g) {
    LATTE_CHECK(g.dtype == DType::Float32, "gemm: bf16 products take float32 operands, got ", dtype_name(g.dtype));
    std::string why;
    LATTE_CHECK(bf16_supported(&why), "gemm: bf16 products (", g.m, "x", g.k, ") x (", g.k, "x", g.n,
                ") cannot run here: ", why);
    if (g.c_offsets.empty() || g.m == 0 || g.n == 0) return;
    const auto* a = static_cast<const float*>(g.a);
    const auto* b = static_cast<const float*>(g.b);
    auto* c = static_cast<float*>(g.c);
    const auto alpha = static_cast<float>(g.alpha), beta = static_cast<float>(g.beta);
    const auto batches = static_cast<int64_t>(g.c_offsets.size());
    const int64_t work = g.m * g.n * std::max<int64_t>(g.k, 1);
    if (batches == 1 || work >= kLargeProduct) {
        for (int64_t i = 0; i < batches; ++i)
            gemm_bf16(g.trans_a, g.trans_b, g.m, g.n, g.k, alpha, a + g.a_offsets[i], g.lda, b + g.b_offsets[i], g.ldb,
                      beta, c + g.c_offsets[i], g.ldc);
        return;
    }
    parallel_for(batches, std::max<int64_t>(1, kGemmGrain / work), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i)
            gemm_tile_bf16(g.trans_a, g.trans_b, g.m, g.n, g.k, alpha, a + g.a_offsets[i], g.lda, b + g.b_offsets[i],
                           g.ldb, beta, c + g.c_offsets[i], g.ldc);
    });
}

}  // namespace latte::cpu
