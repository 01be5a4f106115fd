// Host-to-device copies that do not stall the stream. A plain cudaMemcpyAsync from pageable
// memory may synchronize, and the caller's buffer may go away on return, so small uploads
// (from_vector, causal masks, RoPE tables, gemm pointer arrays) are first copied into one of a
// ring of pinned buffers; the copy is queued on the stream and an event marks when the buffer is
// free again. Large uploads (weights) go through the ring in pieces of at most 4 MiB.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <mutex>

namespace latte::cuda_detail {

class HostStaging {
public:
    static constexpr std::size_t kMaxStagedBytes = std::size_t(4) << 20;  // per slot; larger uploads are split
    static constexpr std::size_t kSlots = 32;  // uploads in flight before the host waits for the oldest

    HostStaging() = default;
    HostStaging(const HostStaging&) = delete;
    HostStaging& operator=(const HostStaging&) = delete;
    ~HostStaging();

    // Queues a copy of `bytes` from host_src to device memory dst on `stream`. host_src may be
    // reused as soon as this returns; dst is written in stream order.
    void upload(void* dst, const void* host_src, std::size_t bytes, cudaStream_t stream);

private:
    void upload_piece(void* dst, const void* host_src, std::size_t bytes, cudaStream_t stream);

    struct Slot {
        void* host = nullptr;  // pinned (cudaHostAlloc)
        std::size_t capacity = 0;
        cudaEvent_t free_again = nullptr;  // recorded after the copy that reads `host`
        bool pending = false;
    };
    std::mutex mutex_;
    std::array<Slot, kSlots> slots_{};
    std::size_t next_ = 0;
};

}  // namespace latte::cuda_detail
