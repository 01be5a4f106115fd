// Reductions over the middle axis of a contiguous [outer, size, inner] tensor. Work is split so
// that even one output (a full reduction, outer = inner = 1) fills the GPU: the `size` axis is cut
// into `parts` slices, each block reduces one slice into a float64 partial, and a second pass
// reduces the partials. No atomics, so results do not depend on timing. Sums accumulate in double,
// as on the CPU, so long float32 rows lose no precision; max is exact in double too.
#include <algorithm>

#include "backends/common/dispatch.h"
#include "backends/cuda/block_reduce.cuh"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernels.h"

namespace latte::cuda_detail {
namespace {

constexpr int64_t kTargetBlocks = 2048;    // about 16 blocks per SM on an H100/H200 (132 SMs)
constexpr int64_t kMinRowSlice = 4096;     // inner == 1: elements per block, at least
constexpr int64_t kMinColumnSlice = 64;    // inner > 1: rows of the size axis per block, at least
constexpr int64_t kMaxGrid = 32768;        // blocks loop over the jobs beyond this
constexpr int kColumnWidth = 32, kColumnDepth = 8;  // threads of a column block: x along inner

__host__ __device__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
__device__ int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

// inner == 1. Job j = (row, part) reduces elements [part * chunk, (part + 1) * chunk) of its row
// into dst[j], so that with parts == 1 dst is the [rows] result and otherwise [rows, parts] partials.
template <class In, class Out>
__global__ void reduce_rows_kernel(ReduceOp op, Out* dst, const In* src, int64_t rows, int64_t size, int64_t parts) {
    __shared__ double shared[32];
    const int64_t chunk = ceil_div(size, parts);
    for (int64_t job = blockIdx.x; job < rows * parts; job += gridDim.x) {  // uniform over the block
        const int64_t row = job / parts, part = job % parts;
        const int64_t begin = part * chunk, end = smaller(size, begin + chunk);
        const In* p = src + row * size;
        double acc = identity<double>(op);
        for (int64_t s = begin + threadIdx.x; s < end; s += blockDim.x) acc = combine<double>(op, acc, double(p[s]));
        acc = block_reduce<double>(op, acc, shared);
        if (threadIdx.x == 0) dst[job] = static_cast<Out>(acc);
    }
}

// inner > 1. Job j = (o, part, tile): 32 neighbouring columns of the inner axis (coalesced reads)
// over one slice of the size axis, 8 rows of threads striding it; they combine in shared memory.
// dst is [outer, parts, inner]: the result when parts == 1, else partials.
template <class In, class Out>
__global__ void reduce_columns_kernel(ReduceOp op, Out* dst, const In* src, int64_t outer, int64_t size,
                                      int64_t inner, int64_t parts) {
    __shared__ double shared[kColumnDepth][kColumnWidth + 1];
    const int64_t chunk = ceil_div(size, parts), tiles = ceil_div(inner, kColumnWidth);
    for (int64_t job = blockIdx.x; job < outer * parts * tiles; job += gridDim.x) {  // uniform over the block
        const int64_t tile = job % tiles, rest = job / tiles, part = rest % parts, o = rest / parts;
        const int64_t col = tile * kColumnWidth + threadIdx.x;
        const int64_t begin = part * chunk, end = smaller(size, begin + chunk);
        double acc = identity<double>(op);
        if (col < inner)
            for (int64_t s = begin + threadIdx.y; s < end; s += blockDim.y)
                acc = combine<double>(op, acc, double(src[(o * size + s) * inner + col]));
        shared[threadIdx.y][threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.y == 0 && col < inner) {
            for (int y = 1; y < static_cast<int>(blockDim.y); ++y)
                acc = combine<double>(op, acc, shared[y][threadIdx.x]);
            dst[(o * parts + part) * inner + col] = static_cast<Out>(acc);
        }
        __syncthreads();  // the next job rewrites `shared`
    }
}

int grid_for(int64_t jobs) { return static_cast<int>(std::clamp<int64_t>(jobs, 1, kMaxGrid)); }

// Threads for a row slice of `n` elements: whole warps, at most 256.
int row_threads(int64_t n) { return static_cast<int>(std::clamp<int64_t>(ceil_div(n, 32) * 32, 32, 256)); }

template <class In, class Out>
void launch_pass(ReduceOp op, Out* dst, const In* src, int64_t outer, int64_t size, int64_t inner, int64_t parts,
                 cudaStream_t stream) {
    if (inner == 1) {
        reduce_rows_kernel<In, Out><<<grid_for(outer * parts), row_threads(ceil_div(size, parts)), 0, stream>>>(
            op, dst, src, outer, size, parts);
    } else {
        const dim3 threads(kColumnWidth, kColumnDepth);
        reduce_columns_kernel<In, Out><<<grid_for(outer * parts * ceil_div(inner, kColumnWidth)), threads, 0, stream>>>(
            op, dst, src, outer, size, inner, parts);
    }
    LATTE_CUDA_CHECK_LAUNCH("reduce kernel");
}

}  // namespace

int64_t reduce_parts(int64_t outer, int64_t size, int64_t inner) {
    LATTE_CHECK(outer >= 0 && size >= 0 && inner >= 0, "cuda reduce: negative sizes [", outer, ", ", size, ", ",
                inner, "]");
    if (outer * inner == 0 || size == 0) return 1;
    const int64_t jobs = inner == 1 ? outer : outer * ceil_div(inner, kColumnWidth);
    const int64_t most = ceil_div(size, inner == 1 ? kMinRowSlice : kMinColumnSlice);
    return std::clamp<int64_t>(kTargetBlocks / jobs, 1, most);
}

void launch_reduce(ReduceOp op, void* dst, const void* src, DType dtype, int64_t outer, int64_t size, int64_t inner,
                   int64_t parts, double* partials, cudaStream_t stream) {
    if (outer * inner == 0) return;
    LATTE_CHECK(parts >= 1 && (parts == 1 || partials != nullptr), "cuda reduce: ", parts,
                " parts need a partials buffer");
    dispatch(dtype, [&](auto* tag) {
        using T = elem_t<decltype(tag)>;
        T* out = static_cast<T*>(dst);
        const T* in = static_cast<const T*>(src);
        if (parts == 1) {
            launch_pass<T, T>(op, out, in, outer, size, inner, 1, stream);
            return;
        }
        launch_pass<T, double>(op, partials, in, outer, size, inner, parts, stream);  // [outer, parts, inner]
        launch_pass<double, T>(op, out, partials, outer, parts, inner, 1, stream);
    });
}

}  // namespace latte::cuda_detail
