// CUDA kernels of the language-model ops: embedding gather and scatter-add (atomicAdd, so
// repeated ids accumulate), fused cross-entropy forward/backward and RMSNorm/LayerNorm
// forward/backward, the row-wise ones with one block per row and sums in double, as on the CPU.
#include <algorithm>
#include <cmath>

#include "backends/common/dispatch.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels.h"

namespace latte::cuda_detail {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 8192)); }
int row_threads(int64_t cols) { return static_cast<int>(std::clamp<int64_t>((cols + 31) / 32 * 32, 32, kThreads)); }

void check_rows(int64_t rows, const char* what) {
    LATTE_CHECK(rows <= 0x7fffffff, "cuda: ", what, " over ", rows, " rows exceeds one grid");
}

#define LATTE_GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// Block-wide sum or max (NaN kept) of one double per thread; every thread gets the result.
// blockDim.x is a multiple of 32 (row_threads); `shared` holds 32 doubles.
template <bool IsMax>
__device__ double block_combine(double v, double* shared) {
    auto op = [](double a, double b) { return IsMax ? ((a > b || a != a) ? a : b) : a + b; };
    for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();  // `shared` may still be read from a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : (IsMax ? -INFINITY : 0.0);
        for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}

template <class T>
__global__ void gather_kernel(T* dst, const T* src, const int64_t* ids, int64_t n, int64_t cols) {
    LATTE_GRID_STRIDE(i, n * cols) dst[i] = src[ids[i / cols] * cols + i % cols];
}

template <class T>
__global__ void scatter_add_kernel(T* dst, const T* src, const int64_t* ids, int64_t n, int64_t cols) {
    LATTE_GRID_STRIDE(i, n * cols) atomicAdd(dst + ids[i / cols] * cols + i % cols, src[i]);
}

template <class T>
__global__ void cross_entropy_fwd_kernel(T* loss, double* lse, const T* x, const int64_t* targets, int64_t cols,
                                         int64_t ignore_index) {
    __shared__ double shared[32];
    const T* xr = x + blockIdx.x * cols;
    double m = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmax(m, double(xr[c]));
    m = block_combine<true>(m, shared);
    double s = 0;
    if (isfinite(m))
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += exp(double(xr[c]) - m);
    s = block_combine<false>(s, shared);
    if (threadIdx.x == 0) {
        const double z = isfinite(m) ? m + ::log(s) : m;
        const int64_t t = targets[blockIdx.x];
        lse[blockIdx.x] = z;
        loss[blockIdx.x] = t == ignore_index ? T(0) : static_cast<T>(z - double(xr[t]));
    }
}

template <class T>
__global__ void cross_entropy_bwd_kernel(T* dx, const T* x, const double* lse, const int64_t* targets, const T* g,
                                         int64_t cols, int64_t ignore_index) {
    const int64_t r = blockIdx.x, t = targets[r];
    const T* xr = x + r * cols;
    T* dr = dx + r * cols;
    const T scale = g[r];
    const double shift = lse[r];
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        if (t == ignore_index) dr[c] = T(0);
        else dr[c] = scale * exp(static_cast<T>(double(xr[c]) - shift)) - (c == t ? scale : T(0));
    }
}

template <class T>
__global__ void norm_fwd_kernel(bool layer, T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t cols,
                                double eps) {
    __shared__ double shared[32];
    const T* xr = x + blockIdx.x * cols;
    T* yr = y + blockIdx.x * cols;
    double mu = 0;
    if (layer) {
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) mu += double(xr[c]);
        mu = block_combine<false>(mu, shared) / double(cols);
    }
    double var = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const double v = double(xr[c]) - mu;
        var += v * v;
    }
    var = block_combine<false>(var, shared) / double(cols);
    const double rs = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
        if (layer) mean[blockIdx.x] = static_cast<T>(mu);
        rstd[blockIdx.x] = static_cast<T>(rs);
    }
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        double v = (double(xr[c]) - mu) * rs;
        if (w) v *= double(w[c]);
        if (b) v += double(b[c]);
        yr[c] = static_cast<T>(v);
    }
}

template <class T>
__global__ void norm_bwd_kernel(bool layer, T* dx, const T* dy, const T* x, const T* w, const T* mean, const T* rstd,
                                int64_t cols) {
    __shared__ double shared[32];
    const int64_t r = blockIdx.x;
    const T* xr = x + r * cols;
    const T* gr = dy + r * cols;
    T* dr = dx + r * cols;
    const double mu = layer ? double(mean[r]) : 0.0, rs = double(rstd[r]);
    double sum_gw = 0, sum_gwx = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const double gw = double(gr[c]) * (w ? double(w[c]) : 1.0);
        sum_gw += gw;
        sum_gwx += gw * (double(xr[c]) - mu) * rs;
    }
    const double n = double(cols);
    const double a = layer ? block_combine<false>(sum_gw, shared) / n : 0.0;
    const double bcoef = block_combine<false>(sum_gwx, shared) / n;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const double gw = double(gr[c]) * (w ? double(w[c]) : 1.0);
        const double xhat = (double(xr[c]) - mu) * rs;
        dr[c] = static_cast<T>(rs * (gw - a - xhat * bcoef));
    }
}

}  // namespace

void launch_gather_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols,
                        cudaStream_t stream) {
    if (n * cols == 0) return;
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        gather_kernel<T><<<blocks_for(n * cols), kThreads, 0, stream>>>(static_cast<T*>(dst), static_cast<const T*>(src),
                                                                        ids, n, cols);
    });
    LATTE_CUDA_CHECK_LAUNCH("embedding gather kernel");
}

void launch_scatter_add_rows(void* dst, const void* src, const int64_t* ids, DType dtype, int64_t n, int64_t cols,
                             cudaStream_t stream) {
    if (n * cols == 0) return;
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        scatter_add_kernel<T><<<blocks_for(n * cols), kThreads, 0, stream>>>(static_cast<T*>(dst),
                                                                             static_cast<const T*>(src), ids, n, cols);
    });
    LATTE_CUDA_CHECK_LAUNCH("embedding scatter-add kernel");
}

void launch_cross_entropy_fwd(void* loss, void* lse, const void* logits, const int64_t* targets, DType dtype,
                              int64_t rows, int64_t cols, int64_t ignore_index, cudaStream_t stream) {
    if (rows == 0) return;
    check_rows(rows, "cross_entropy");
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        cross_entropy_fwd_kernel<T><<<static_cast<unsigned>(rows), row_threads(cols), 0, stream>>>(
            static_cast<T*>(loss), static_cast<double*>(lse), static_cast<const T*>(logits), targets, cols, ignore_index);
    });
    LATTE_CUDA_CHECK_LAUNCH("cross_entropy forward kernel");
}

void launch_cross_entropy_bwd(void* dx, const void* logits, const void* lse, const int64_t* targets, const void* g,
                              DType dtype, int64_t rows, int64_t cols, int64_t ignore_index, cudaStream_t stream) {
    if (rows == 0 || cols == 0) return;
    check_rows(rows, "cross_entropy backward");
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        cross_entropy_bwd_kernel<T><<<static_cast<unsigned>(rows), row_threads(cols), 0, stream>>>(
            static_cast<T*>(dx), static_cast<const T*>(logits), static_cast<const double*>(lse), targets,
            static_cast<const T*>(g), cols, ignore_index);
    });
    LATTE_CUDA_CHECK_LAUNCH("cross_entropy backward kernel");
}

void launch_norm_fwd(NormKind kind, void* y, void* mean, void* rstd, const void* x, const void* weight,
                     const void* bias, DType dtype, int64_t rows, int64_t cols, double eps, cudaStream_t stream) {
    if (rows == 0) return;
    check_rows(rows, "norm");
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        norm_fwd_kernel<T><<<static_cast<unsigned>(rows), row_threads(cols), 0, stream>>>(
            kind == NormKind::Layer, static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd),
            static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<const T*>(bias), cols, eps);
    });
    LATTE_CUDA_CHECK_LAUNCH("norm forward kernel");
}

void launch_norm_bwd(NormKind kind, void* dx, const void* dy, const void* x, const void* weight, const void* mean,
                     const void* rstd, DType dtype, int64_t rows, int64_t cols, cudaStream_t stream) {
    if (rows == 0 || cols == 0) return;
    check_rows(rows, "norm backward");
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        norm_bwd_kernel<T><<<static_cast<unsigned>(rows), row_threads(cols), 0, stream>>>(
            kind == NormKind::Layer, static_cast<T*>(dx), static_cast<const T*>(dy), static_cast<const T*>(x),
            static_cast<const T*>(weight), static_cast<const T*>(mean), static_cast<const T*>(rstd), cols);
    });
    LATTE_CUDA_CHECK_LAUNCH("norm backward kernel");
}

}  // namespace latte::cuda_detail
