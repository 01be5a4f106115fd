// A caching allocator: freed blocks are kept by size class and handed out again, so a training
// or inference loop that allocates the same shapes every step stops paying for the system
// allocator (page faults on the CPU, synchronising cudaMalloc/cudaFree on a GPU).
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>

namespace latte {

class CachingAllocator {
public:
    using RawAllocate = std::function<void*(std::size_t)>;  // returns null when out of memory
    using RawFree = std::function<void(void*)>;

    // Keeps at most `cache_limit` bytes of free blocks; a block freed beyond that goes back to
    // the system. Requests below `min_cached` bytes bypass the cache. A cache_limit of 0 turns
    // caching off: every request gets exactly its size from the system and goes back at once,
    // so AddressSanitizer and compute-sanitizer see overruns and uses after free.
    CachingAllocator(RawAllocate raw_allocate, RawFree raw_free, std::size_t cache_limit, std::size_t min_cached);
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // Null when the system is out of memory even after the cache was emptied.
    void* allocate(std::size_t bytes);
    void deallocate(void* ptr, std::size_t bytes);
    void empty_cache();  // returns every cached block to the system
    std::size_t cached_bytes() const;
    // Blocks of min_cached bytes or more taken from the system (not from the cache) so far: zero
    // new ones per step once a loop of steady shapes is warm.
    std::size_t system_allocations() const;

    // The size class a request is served from: sizes round up to one of 4 steps per power of
    // two, so a block is at most 25% larger than asked and similar shapes share blocks.
    static std::size_t size_class(std::size_t bytes);

    // The cache limit in bytes from environment variable `name` (MiB, a non-negative integer;
    // 0 turns the cache off), or default_mb when it is unset. Throws latte::Error on a bad value.
    static std::size_t limit_from_env(const char* name, std::size_t default_mb);

private:
    RawAllocate raw_allocate_;
    RawFree raw_free_;
    std::size_t limit_, min_cached_, cached_ = 0, system_allocations_ = 0;
    std::multimap<std::size_t, void*> free_;  // size class -> free block
    mutable std::mutex mutex_;
};

}  // namespace latte
