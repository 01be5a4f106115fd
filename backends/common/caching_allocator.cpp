#include "backends/common/caching_allocator.h"

#include <bit>
#include <cstdlib>
#include <utility>

#include "core/error.h"
#include "core/parse.h"

namespace latte {

CachingAllocator::CachingAllocator(RawAllocate raw_allocate, RawFree raw_free, std::size_t cache_limit,
                                   std::size_t min_cached)
    : raw_allocate_(std::move(raw_allocate)), raw_free_(std::move(raw_free)), limit_(cache_limit),
      min_cached_(min_cached) {}

std::size_t CachingAllocator::size_class(std::size_t bytes) {
    if (bytes <= 512) return 512;
    const std::size_t top = std::bit_floor(bytes);  // 2^k <= bytes
    const std::size_t step = top / 4;
    return (bytes + step - 1) / step * step;
}

std::size_t CachingAllocator::limit_from_env(const char* name, std::size_t default_mb) {
    // At most 2^40 MiB, so the count of bytes cannot overflow.
    const int64_t mb = env_int(name, static_cast<int64_t>(default_mb), 0, int64_t{1} << 40,
                               "MiB of memory cache; 0 turns the cache off");
    return static_cast<std::size_t>(mb) << 20;
}

void* CachingAllocator::allocate(std::size_t bytes) {
    if (bytes < min_cached_) return raw_allocate_(bytes == 0 ? 1 : bytes);
    if (limit_ == 0) {  // no cache: the exact size
        {
            std::lock_guard<std::mutex> lock(mutex_);
            ++system_allocations_;
        }
        return raw_allocate_(bytes);
    }
    const std::size_t size = size_class(bytes);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = free_.find(size);
        if (it != free_.end()) {
            void* ptr = it->second;
            free_.erase(it);
            cached_ -= size;
            return ptr;
        }
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ++system_allocations_;
    }
    if (void* ptr = raw_allocate_(size)) return ptr;
    empty_cache();  // out of memory: give the cached blocks back and try once more
    return raw_allocate_(size);
}

void CachingAllocator::deallocate(void* ptr, std::size_t bytes) {
    if (ptr == nullptr) return;
    if (bytes < min_cached_ || limit_ == 0) {
        raw_free_(ptr);
        return;
    }
    const std::size_t size = size_class(bytes);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (cached_ + size <= limit_) {
            free_.emplace(size, ptr);
            cached_ += size;
            return;
        }
    }
    raw_free_(ptr);
}

void CachingAllocator::empty_cache() {
    std::multimap<std::size_t, void*> blocks;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        blocks.swap(free_);
        cached_ = 0;
    }
    for (auto& [size, ptr] : blocks) raw_free_(ptr);
}

std::size_t CachingAllocator::system_allocations() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return system_allocations_;
}

std::size_t CachingAllocator::cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
}

}  // namespace latte
