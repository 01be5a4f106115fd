#include "core/cuda.h"

#include <atomic>

#include "core/backend.h"

namespace latte::cuda {
namespace {
std::atomic<bool> tf32{false};
}

bool is_available(std::string* why_not) {
    std::string reason;
    const bool ok = cuda_device_count(&reason) > 0;
    if (!ok && why_not) *why_not = reason;
    return ok;
}

int device_count() { return cuda_device_count(nullptr); }

void synchronize(int index) { backend_for(Device::cuda(index)).synchronize(); }

void set_allow_tf32(bool allow) { tf32 = allow; }
bool allow_tf32() { return tf32; }

}  // namespace latte::cuda
