// The CUDA backend for one device: memory through a caching allocator over cudaMalloc, one
// stream on which every kernel and copy of the device is queued in order, cuBLAS for gemm and
// our own kernels (kernels.cu) for everything else.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>

#include "backends/common/caching_allocator.h"
#include "backends/cuda/host_staging.h"
#include "core/backend.h"

namespace latte::cuda_detail {

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device);
    ~CudaBackend() override;

    void* allocate(std::size_t bytes) override;
    void deallocate(void* ptr, std::size_t bytes) override;
    void empty_cache() override;
    std::size_t cached_bytes() const override;
    std::size_t system_allocations() const override;
    void synchronize() override;
    std::shared_ptr<void> record_marker() override;
    bool supports_bf16_products(std::string* why_not) override;
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
    // Language-model kernels (lm_kernels.cu).
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

private:
    void activate() const;  // makes this backend's device current for the calling thread

    int device_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    std::unique_ptr<CachingAllocator> allocator_;
    HostStaging staging_;  // pinned buffers for uploads that do not stall the stream
};

}  // namespace latte::cuda_detail
