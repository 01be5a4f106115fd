// Storage: bytes on one device, freed when the last tensor viewing them goes away.
// The allocator counts live and peak bytes per device, like torch.cuda.max_memory_allocated.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "device.h"

namespace latte {

struct MemoryStats {
    int64_t live_bytes = 0;   // bytes held by tensors now
    int64_t peak_bytes = 0;   // the most live bytes since start or the last reset_peak_memory
    int64_t allocations = 0;  // storages created since start
    int64_t cached_bytes = 0; // freed blocks the backend keeps for reuse (not in live_bytes)
    int64_t system_allocations = 0;  // large blocks taken from the system, not the cache, so far
};

MemoryStats memory_stats(Device device = Device::cpu());
// Sets the peak to the current live bytes, so a later peak measures one region of code.
void reset_peak_memory(Device device = Device::cpu());
// Returns the backend's cached free blocks to the system (like torch.cuda.empty_cache).
void empty_cache(Device device = Device::cpu());

class Storage {
public:
    Storage(std::size_t bytes, Device device);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() const { return data_; }
    std::size_t bytes() const { return bytes_; }
    Device device() const { return device_; }

    // Counts in-place writes to these bytes (as PyTorch's version counter): a backward node
    // records the versions of the tensors it saved and refuses to run once one has changed.
    uint64_t version() const { return version_.load(std::memory_order_relaxed); }
    void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> version_{0};
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
    Device device_;
};

}  // namespace latte
