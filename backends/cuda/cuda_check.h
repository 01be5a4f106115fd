// Every CUDA runtime and cuBLAS call goes through these: a failure becomes a latte::Error that
// names the call and the error code, never a silent wrong result.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace latte::cuda_detail {

inline void check_cuda(cudaError_t status, const char* call) {
    LATTE_CHECK(status == cudaSuccess, "cuda: ", call, " failed: ", cudaGetErrorString(status), " (",
                cudaGetErrorName(status), " = ", static_cast<int>(status), ")");
}

inline void check_cublas(cublasStatus_t status, const char* call) {
    LATTE_CHECK(status == CUBLAS_STATUS_SUCCESS, "cublas: ", call, " failed: ", cublasGetStatusString(status),
                " (", static_cast<int>(status), ")");
}

}  // namespace latte::cuda_detail

#define LATTE_CUDA_CHECK(call) ::latte::cuda_detail::check_cuda((call), #call)
#define LATTE_CUBLAS_CHECK(call) ::latte::cuda_detail::check_cublas((call), #call)
// After a kernel launch: a bad configuration shows up here, not at some later call.
#define LATTE_CUDA_CHECK_LAUNCH(what) ::latte::cuda_detail::check_cuda(cudaGetLastError(), what)
