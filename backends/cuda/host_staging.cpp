#include "backends/cuda/host_staging.h"

#include <algorithm>
#include <cstring>

#include "backends/cuda/cuda_check.h"

namespace latte::cuda_detail {

HostStaging::~HostStaging() {
    // No throwing here: the backends live until the process ends, when the driver may be gone.
    for (Slot& s : slots_) {
        if (s.pending) (void)cudaEventSynchronize(s.free_again);
        if (s.free_again) (void)cudaEventDestroy(s.free_again);
        if (s.host) (void)cudaFreeHost(s.host);
    }
}

void HostStaging::upload(void* dst, const void* host_src, std::size_t bytes, cudaStream_t stream) {
    // A large upload goes through the ring in pieces: the host waits only for slots to free up,
    // never for the whole stream.
    for (std::size_t first = 0; first < bytes; first += kMaxStagedBytes)
        upload_piece(static_cast<char*>(dst) + first, static_cast<const char*>(host_src) + first,
                     std::min(kMaxStagedBytes, bytes - first), stream);
}

void HostStaging::upload_piece(void* dst, const void* host_src, std::size_t bytes, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mutex_);
    Slot& s = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    if (s.pending) {  // the copy of kSlots uploads ago may still be reading this buffer
        LATTE_CUDA_CHECK(cudaEventSynchronize(s.free_again));
        s.pending = false;
    }
    if (s.free_again == nullptr) LATTE_CUDA_CHECK(cudaEventCreateWithFlags(&s.free_again, cudaEventDisableTiming));
    if (s.capacity < bytes) {
        std::size_t capacity = 4096;
        while (capacity < bytes) capacity *= 2;
        if (s.host) {
            LATTE_CUDA_CHECK(cudaFreeHost(s.host));
            s.host = nullptr;
            s.capacity = 0;
        }
        LATTE_CUDA_CHECK(cudaHostAlloc(&s.host, capacity, cudaHostAllocDefault));
        s.capacity = capacity;
    }
    std::memcpy(s.host, host_src, bytes);
    LATTE_CUDA_CHECK(cudaMemcpyAsync(dst, s.host, bytes, cudaMemcpyHostToDevice, stream));
    LATTE_CUDA_CHECK(cudaEventRecord(s.free_again, stream));
    s.pending = true;
}

}  // namespace latte::cuda_detail
