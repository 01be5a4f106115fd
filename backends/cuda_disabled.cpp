// Built instead of backends/cuda/ when latte is configured without CUDA, and always into
// latte::latte, the installed CPU-only library (docs/install.md).
#include "core/backend.h"

namespace latte {

namespace {
const char* kWhyNot =
    "this latte has no CUDA backend: it is latte::latte, the CPU-only library (link latte::full, from "
    "find_package(latte COMPONENTS full), instead), or latte was built without CUDA (configure with -DLATTE_CUDA=ON "
    "and nvcc on PATH)";
}

Backend* cuda_backend(int, std::string* why_not) {
    if (why_not) *why_not = kWhyNot;
    return nullptr;
}

int cuda_device_count(std::string* why_not) {
    if (why_not) *why_not = kWhyNot;
    return 0;
}

}  // namespace latte
