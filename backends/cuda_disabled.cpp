// Built instead of backends/cuda/ when latte is configured without CUDA.
#include "core/backend.h"

namespace latte {

Backend* cuda_backend(int, std::string* why_not) {
    if (why_not) *why_not = "latte was built without CUDA (configure with -DLATTE_CUDA=ON and nvcc on PATH)";
    return nullptr;
}

}  // namespace latte
