// Device helpers shared by the reduction and softmax kernels: the combine step of a sum or a max
// (a NaN is kept, as PyTorch does) and a block-wide reduction through warp shuffles.
#pragma once
#include <cuda_runtime.h>

#include <cmath>

#include "core/backend.h"

namespace latte::cuda_detail {

// Max keeps a NaN (a != a), as PyTorch does, instead of comparing it away.
template <class T>
__device__ T combine(ReduceOp op, T a, T b) {
    return op == ReduceOp::Sum ? a + b : ((a > b || a != a) ? a : b);
}

template <class T>
__device__ T identity(ReduceOp op) {
    return op == ReduceOp::Sum ? T(0) : -T(INFINITY);
}

// Reduces v over the block (a 1-D block of a multiple of 32 threads, up to 1024: the shuffles
// use the full warp mask); every thread gets the result.
// `shared` holds one T per warp.
template <class T>
__device__ T block_reduce(ReduceOp op, T v, T* shared) {
    for (int offset = 16; offset > 0; offset /= 2) v = combine(op, v, __shfl_down_sync(0xffffffffu, v, offset));
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
    __syncthreads();  // `shared` may still be read from a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : identity<T>(op);
        for (int offset = 16; offset > 0; offset /= 2) v = combine(op, v, __shfl_down_sync(0xffffffffu, v, offset));
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}

}  // namespace latte::cuda_detail
