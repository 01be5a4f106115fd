// latte's own CUDA kernels: strided pointwise ops (with dtype conversion for copies), fills,
// and row-wise softmax forward and backward (reductions are in reduce_kernels.cu). The
// pointwise math is backends/common/pointwise.h, shared with the CPU.
#include <algorithm>
#include <cfloat>

#include "backends/common/adam_math.h"
#include "backends/common/dispatch.h"
#include "backends/common/pointwise.h"
#include "backends/common/strided_plan.h"
#include "backends/cuda/block_reduce.cuh"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels.h"
#include "core/random_counter.h"

namespace latte::cuda_detail {
namespace {

constexpr int kMaxDims = 12;
constexpr int kThreads = 256;

// A coalesced strided loop passed to a kernel by value.
template <int N>
struct Geometry {
    int rank;
    int64_t numel;
    int64_t sizes[kMaxDims];
    int64_t strides[N][kMaxDims];
};

template <int N>
Geometry<N> geometry(const Shape& shape, const std::array<const Shape*, N>& strides) {
    const StridedPlan<N> plan = make_plan<N>(shape, strides);
    LATTE_CHECK(plan.shape.size() <= static_cast<size_t>(kMaxDims), "cuda: a view of shape ", shape_str(shape),
                " has more than ", kMaxDims, " non-mergeable dims");
    Geometry<N> g{};
    g.rank = static_cast<int>(plan.shape.size());
    g.numel = shape_numel(shape);
    for (int d = 0; d < g.rank; ++d) {
        g.sizes[d] = plan.shape[static_cast<size_t>(d)];
        for (int k = 0; k < N; ++k) g.strides[k][d] = plan.strides[static_cast<size_t>(k)][static_cast<size_t>(d)];
    }
    return g;
}

template <int N>
__device__ void element_offsets(const Geometry<N>& g, int64_t linear, int64_t (&out)[N]) {
    if (g.rank == 1) {  // the common case after coalescing: no 64-bit division
        for (int k = 0; k < N; ++k) out[k] = linear * g.strides[k][0];
        return;
    }
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = g.rank - 1; d >= 0; --d) {
        const int64_t index = linear % g.sizes[d];
        linear /= g.sizes[d];
        for (int k = 0; k < N; ++k) out[k] += index * g.strides[k][d];
    }
}

int blocks_for(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 8192)); }

#define LATTE_GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <class To, class From>
__global__ void copy_kernel(Geometry<2> g, To* dst, const From* src) {
    LATTE_GRID_STRIDE(i, g.numel) {
        int64_t off[2];
        element_offsets(g, i, off);
        dst[off[0]] = static_cast<To>(src[off[1]]);
    }
}

template <class T>
__global__ void fill_kernel(Geometry<1> g, T* dst, T value) {
    LATTE_GRID_STRIDE(i, g.numel) {
        int64_t off[1];
        element_offsets(g, i, off);
        dst[off[0]] = value;
    }
}

// One thread per Box-Muller pair: elements 2p (cos) and 2p + 1 (sin), as on the CPU.
template <class T>
__global__ void normal_kernel(T* dst, int64_t n, uint64_t state, double mean, double std) {
    LATTE_GRID_STRIDE(p, (n + 1) / 2) {
        double c, s;
        random::normal_pair(state, static_cast<uint64_t>(p), c, s);
        dst[2 * p] = static_cast<T>(mean + std * c);
        if (2 * p + 1 < n) dst[2 * p + 1] = static_cast<T>(mean + std * s);
    }
}

template <class T>
__global__ void uniform_kernel(T* dst, int64_t n, uint64_t state, double low, double high) {
    LATTE_GRID_STRIDE(i, n) dst[i] = random::uniform_in<T>(state, uint64_t(i + 1), low, high);
}

template <class T>
__global__ void adam_kernel(AdamStep step, int64_t n, T* p, const T* g, T* m, T* v) {
    LATTE_GRID_STRIDE(i, n) adam_element<T>(step, p[i], g[i], m[i], v[i]);
}

template <class T>
__global__ void unary_kernel(Geometry<2> g, UnaryOp op, T alpha, T* dst, const T* src) {
    LATTE_GRID_STRIDE(i, g.numel) {
        int64_t off[2];
        element_offsets(g, i, off);
        dst[off[0]] = apply_unary<T>(op, src[off[1]], alpha);
    }
}

template <class T>
__global__ void binary_kernel(Geometry<3> g, BinaryOp op, T* dst, const T* a, const T* b) {
    LATTE_GRID_STRIDE(i, g.numel) {
        int64_t off[3];
        element_offsets(g, i, off);
        dst[off[0]] = apply_binary<T>(op, a[off[1]], b[off[2]]);
    }
}

template <class T>
__global__ void where_kernel(Geometry<4> g, T* dst, const T* cond, const T* a, const T* b) {
    LATTE_GRID_STRIDE(i, g.numel) {
        int64_t off[4];
        element_offsets(g, i, off);
        dst[off[0]] = cond[off[1]] != T(0) ? a[off[2]] : b[off[3]];
    }
}

// One block per row: y = softmax(x) or log_softmax(x), with the max subtracted first.
template <class T>
__global__ void softmax_fwd_kernel(T* y, const T* x, int64_t cols, bool log) {
    __shared__ T shared[32];
    const T* in = x + blockIdx.x * cols;
    T* out = y + blockIdx.x * cols;
    T m = -T(INFINITY);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = in[c] > m ? in[c] : m;
    m = block_reduce(ReduceOp::Max, m, shared);
    __shared__ double shared_sum[32];
    double s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += exp(in[c] - m);
    s = block_reduce<double>(ReduceOp::Sum, s, shared_sum);
    const T log_s = static_cast<T>(::log(s)), inv_s = static_cast<T>(1.0 / s);
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        out[c] = log ? in[c] - m - log_s : exp(in[c] - m) * inv_s;
}

// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
template <class T>
__global__ void softmax_bwd_kernel(T* dx, const T* y, const T* dy, int64_t cols, bool log) {
    __shared__ double shared[32];
    const int64_t base = blockIdx.x * cols;
    double acc = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        acc += log ? double(dy[base + c]) : double(dy[base + c]) * double(y[base + c]);
    const T s = static_cast<T>(block_reduce<double>(ReduceOp::Sum, acc, shared));
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
        const int64_t i = base + c;
        dx[i] = log ? dy[i] - exp(y[i]) * s : y[i] * (dy[i] - s);
    }
}

// Threads per block for a row-wise kernel: enough warps to cover the row, at most 256.
int row_threads(int64_t cols) { return static_cast<int>(std::clamp<int64_t>((cols + 31) / 32 * 32, 32, kThreads)); }

void check_rows(int64_t rows, const char* what) {
    LATTE_CHECK(rows <= 0x7fffffff, "cuda: ", what, " over ", rows, " rows exceeds one grid");
}

}  // namespace

void launch_copy(const View& dst, const View& src, cudaStream_t stream) {
    const auto g = geometry<2>(dst.shape, {&dst.strides, &src.strides});
    if (g.numel == 0) return;
    dispatch_all(dst.dtype, [&](auto* to_tag) {
        dispatch_all(src.dtype, [&](auto* from_tag) {
            using To = elem_t<decltype(to_tag)>;
            using From = elem_t<decltype(from_tag)>;
            copy_kernel<To, From><<<blocks_for(g.numel), kThreads, 0, stream>>>(g, static_cast<To*>(dst.data),
                                                                                 static_cast<const From*>(src.data));
        });
    });
    LATTE_CUDA_CHECK_LAUNCH("copy kernel");
}

void launch_fill(const View& dst, double value, cudaStream_t stream) {
    const auto g = geometry<1>(dst.shape, {&dst.strides});
    if (g.numel == 0) return;
    LATTE_CHECK(dst.dtype != DType::Int64 || (value == std::trunc(value) && std::fabs(value) < 0x1p63), "fill: ",
                value, " is not an int64 value");
    dispatch_all(dst.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        fill_kernel<T><<<blocks_for(g.numel), kThreads, 0, stream>>>(g, static_cast<T*>(dst.data), static_cast<T>(value));
    });
    LATTE_CUDA_CHECK_LAUNCH("fill kernel");
}

void launch_fill_normal(void* dst, DType dtype, int64_t n, uint64_t state, double mean, double std,
                        cudaStream_t stream) {
    if (n == 0) return;
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        normal_kernel<T><<<blocks_for((n + 1) / 2), kThreads, 0, stream>>>(static_cast<T*>(dst), n, state, mean, std);
    });
    LATTE_CUDA_CHECK_LAUNCH("normal fill kernel");
}

void launch_fill_uniform(void* dst, DType dtype, int64_t n, uint64_t state, double low, double high,
                         cudaStream_t stream) {
    if (n == 0) return;
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        uniform_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<T*>(dst), n, state, low, high);
    });
    LATTE_CUDA_CHECK_LAUNCH("uniform fill kernel");
}

void launch_adam_step(const AdamStep& step, DType dtype, int64_t n, void* p, const void* g, void* m, void* v,
                      cudaStream_t stream) {
    if (n == 0) return;
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        adam_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(step, n, static_cast<T*>(p), static_cast<const T*>(g),
                                                              static_cast<T*>(m), static_cast<T*>(v));
    });
    LATTE_CUDA_CHECK_LAUNCH("adam kernel");
}

void launch_unary(UnaryOp op, double alpha, const View& dst, const View& src, cudaStream_t stream) {
    const auto g = geometry<2>(dst.shape, {&dst.strides, &src.strides});
    if (g.numel == 0) return;
    dispatch(dst.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        unary_kernel<T><<<blocks_for(g.numel), kThreads, 0, stream>>>(g, op, static_cast<T>(alpha), static_cast<T*>(dst.data),
                                                                      static_cast<const T*>(src.data));
    });
    LATTE_CUDA_CHECK_LAUNCH("unary kernel");
}

void launch_binary(BinaryOp op, const View& dst, const View& a, const View& b, cudaStream_t stream) {
    const auto g = geometry<3>(dst.shape, {&dst.strides, &a.strides, &b.strides});
    if (g.numel == 0) return;
    dispatch(dst.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        binary_kernel<T><<<blocks_for(g.numel), kThreads, 0, stream>>>(g, op, static_cast<T*>(dst.data),
                                                                       static_cast<const T*>(a.data),
                                                                       static_cast<const T*>(b.data));
    });
    LATTE_CUDA_CHECK_LAUNCH("binary kernel");
}

void launch_where(const View& dst, const View& cond, const View& a, const View& b, cudaStream_t stream) {
    const auto g = geometry<4>(dst.shape, {&dst.strides, &cond.strides, &a.strides, &b.strides});
    if (g.numel == 0) return;
    dispatch(dst.dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        where_kernel<T><<<blocks_for(g.numel), kThreads, 0, stream>>>(g, static_cast<T*>(dst.data),
                                                                      static_cast<const T*>(cond.data),
                                                                      static_cast<const T*>(a.data),
                                                                      static_cast<const T*>(b.data));
    });
    LATTE_CUDA_CHECK_LAUNCH("where kernel");
}

void launch_softmax_fwd(void* y, const void* x, DType dtype, int64_t rows, int64_t cols, bool log,
                        cudaStream_t stream) {
    if (rows == 0 || cols == 0) return;
    check_rows(rows, "softmax");
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        softmax_fwd_kernel<T><<<static_cast<unsigned>(rows), row_threads(cols), 0, stream>>>(
            static_cast<T*>(y), static_cast<const T*>(x), cols, log);
    });
    LATTE_CUDA_CHECK_LAUNCH("softmax forward kernel");
}

void launch_softmax_bwd(void* dx, const void* y, const void* dy, DType dtype, int64_t rows, int64_t cols, bool log,
                        cudaStream_t stream) {
    if (rows == 0 || cols == 0) return;
    check_rows(rows, "softmax backward");
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        softmax_bwd_kernel<T><<<static_cast<unsigned>(rows), row_threads(cols), 0, stream>>>(
            static_cast<T*>(dx), static_cast<const T*>(y), static_cast<const T*>(dy), cols, log);
    });
    LATTE_CUDA_CHECK_LAUNCH("softmax backward kernel");
}

}  // namespace latte::cuda_detail
