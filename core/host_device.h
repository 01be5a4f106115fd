// LATTE_HOST_DEVICE marks inline functions that both g++ and nvcc compile, for the CPU and for
// CUDA kernels, so the two devices share one definition.
#pragma once

#if defined(__CUDACC__)
#define LATTE_HOST_DEVICE __host__ __device__
#else
#define LATTE_HOST_DEVICE
#endif
