// The CPU backend: plain loops (threaded by parallel_for) plus OpenBLAS for gemm and LAPACKE
// for linear algebra. Kernels assume inputs were validated by ops/.
#pragma once
#include "core/backend.h"

namespace latte::cpu {

class CpuBackend final : public Backend {
public:
    void* allocate(std::size_t bytes) override;
    void deallocate(void* ptr, std::size_t bytes) override;
    void empty_cache() override;
    std::size_t cached_bytes() const override;
    std::size_t system_allocations() const override;
    bool supports_bf16_products(std::string* why_not) override;  // autocast_gemm.cpp
    void copy_to_host(void* host_dst, const void* src, std::size_t bytes) override;
    void copy_from_host(void* dst, const void* host_src, std::size_t bytes) override;

    void copy(const View& dst, const View& src) override;
    void fill(const View& dst, double value) override;
    void fill_normal(void* dst, DType dtype, int64_t n, uint64_t state, double mean, double std) override;
    void fill_uniform(void* dst, DType dtype, int64_t n, uint64_t state, double low, double high) override;
    void unary(UnaryOp op, double alpha, const View& dst, const View& src) override;
    void binary(BinaryOp op, const View& dst, const View& a, const View& b) override;
    void reduce(ReduceOp op, void* dst, const void* src, DType dtype, int64_t outer, int64_t size,
                int64_t inner) override;
    void gemm(const GemmArgs& args) override;
    void adam_step(const AdamStep& step, DType dtype, int64_t n, void* p, const void* g, void* m, void* v) override;
    void softmax_fwd(void* y, const void* x, DType dtype, int64_t rows, int64_t cols, bool log) override;
    void softmax_bwd(void* dx, const void* y, const void* dy, DType dtype, int64_t rows, int64_t cols,
                     bool log) override;
    // Language-model kernels (embedding.cpp, cross_entropy.cpp, norm.cpp, where.cpp).
    void gather_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols) override;
    void scatter_add_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n,
                          int64_t cols) override;
    void cross_entropy_fwd(void* loss, void* lse, const void* logits, const int64_t* targets, DType dtype,
                           int64_t rows, int64_t cols, int64_t ignore_index) override;
    void cross_entropy_bwd(void* dx, const void* logits, const void* lse, const int64_t* targets, const void* g,
                           DType dtype, int64_t rows, int64_t cols, int64_t ignore_index) override;
    void norm_fwd(NormKind kind, void* y, void* mean, void* rstd, const void* x, const void* weight, const void* bias,
                  DType dtype, int64_t rows, int64_t cols, double eps) override;
    void norm_bwd(NormKind kind, void* dx, const void* dy, const void* x, const void* weight, const void* mean,
                  const void* rstd, DType dtype, int64_t rows, int64_t cols) override;
    void where(const View& dst, const View& cond, const View& a, const View& b) override;
    bool has_fused_rope() const override { return true; }  // rope.cpp
    void rope_rotate(void* out, const void* x, const void* cos, const void* sin, DType dtype, int64_t outer,
                     int64_t length, int64_t heads, int64_t d, bool inverse) override;
    bool has_fused_mse() const override { return true; }  // squared_error.cpp
    double squared_error_sum(const void* input, const void* target, DType dtype, int64_t n) override;
    void squared_error_grad(void* dinput, const void* input, const void* target, double scale, DType dtype,
                            int64_t n) override;
    bool has_fused_swiglu() const override { return true; }  // swiglu.cpp
    void swiglu_fwd(void* out, const void* gate, const void* up, DType dtype, int64_t n) override;
    void swiglu_bwd(void* dgate, void* dup, const void* g, const void* gate, const void* up, DType dtype,
                    int64_t n) override;
    bool has_fused_attention() const override { return true; }
    void attention_fwd(const AttentionSizes& s, const View& q, const View& k, const View& v, const View& o,
                       double* lse) override;
    void attention_bwd(const AttentionSizes& s, const View& q, const View& k, const View& v, const View& o,
                       const double* lse, const View& dout, const View& dq, const View& dk, const View& dv) override;
    void svd(DType dtype, int64_t m, int64_t n, void* a, void* s, void* u, void* vh) override;
};

// GemmArgs::bf16 products: gemm_bf16 or gemm_tile_bf16 per batch (autocast_gemm.cpp).
void gemm_bf16_batches(const GemmArgs& g);

}  // namespace latte::cpu
