// Launchers for latte's own CUDA kernels; each queues work on `stream` and checks the launch.
// Views and pointers are device memory, already validated by ops/.
#pragma once
#include <cuda_runtime.h>

#include "core/backend.h"

namespace latte::cuda_detail {

void launch_copy(const View& dst, const View& src, cudaStream_t stream);  // converts dtype
void launch_fill(const View& dst, double value, cudaStream_t stream);
void launch_fill_normal(void* dst, DType dtype, int64_t n, uint64_t state, double mean, double std,
                        cudaStream_t stream);
void launch_fill_uniform(void* dst, DType dtype, int64_t n, uint64_t state, double low, double high,
                         cudaStream_t stream);
void launch_adam_step(const AdamStep& step, DType dtype, int64_t n, void* p, const void* g, void* m, void* v,
                      cudaStream_t stream);
void launch_unary(UnaryOp op, double alpha, const View& dst, const View& src, cudaStream_t stream);
void launch_binary(BinaryOp op, const View& dst, const View& a, const View& b, cudaStream_t stream);
// reduce_kernels.cu: [outer, size, inner] reduced over `size`, which is cut into reduce_parts()
// slices reduced in parallel; with parts > 1, `partials` is scratch device memory of
// outer * parts * inner doubles.
int64_t reduce_parts(int64_t outer, int64_t size, int64_t inner);
void launch_reduce(ReduceOp op, void* dst, const void* src, DType dtype, int64_t outer, int64_t size, int64_t inner,
                   int64_t parts, double* partials, cudaStream_t stream);
void launch_softmax_fwd(void* y, const void* x, DType dtype, int64_t rows, int64_t cols, bool log,
                        cudaStream_t stream);
void launch_softmax_bwd(void* dx, const void* y, const void* dy, DType dtype, int64_t rows, int64_t cols, bool log,
                        cudaStream_t stream);
void launch_where(const View& dst, const View& cond, const View& a, const View& b, cudaStream_t stream);

// lm_kernels.cu: embedding, cross-entropy and normalisation (see core/backend.h for the formulas).
void launch_gather_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols,
                        cudaStream_t stream);
void launch_scatter_add_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols,
                             cudaStream_t stream);
void launch_cross_entropy_fwd(void* loss, void* lse, const void* logits, const int64_t* targets, DType dtype,
                              int64_t rows, int64_t cols, int64_t ignore_index, cudaStream_t stream);
void launch_cross_entropy_bwd(void* dx, const void* logits, const void* lse, const int64_t* targets, const void* g,
                              DType dtype, int64_t rows, int64_t cols, int64_t ignore_index, cudaStream_t stream);
void launch_norm_fwd(NormKind kind, void* y, void* mean, void* rstd, const void* x, const void* weight,
                     const void* bias, DType dtype, int64_t rows, int64_t cols, double eps, cudaStream_t stream);
void launch_norm_bwd(NormKind kind, void* dx, const void* dy, const void* x, const void* weight, const void* mean,
                     const void* rstd, DType dtype, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace latte::cuda_detail
