#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "backends/common/caching_allocator.h"
#include "core/storage.h"
#include "nn/gqa.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"

using namespace latte;

namespace {

// A system allocator that counts its calls and can be told to fail.
struct FakeSystem {
    int allocations = 0, frees = 0;
    bool out_of_memory = false;
    std::set<void*> live;
    CachingAllocator make(std::size_t limit, std::size_t min_cached) {
        return CachingAllocator(
            [this](std::size_t bytes) -> void* {
                if (out_of_memory && !live.empty()) return nullptr;
                ++allocations;
                void* p = std::malloc(bytes);
                live.insert(p);
                return p;
            },
            [this](void* p) {
                ++frees;
                live.erase(p);
                std::free(p);
            },
            limit, min_cached);
    }
};

}  // namespace

TEST_CASE("size classes round up by at most a quarter", "[backends][allocator]") {
    for (std::size_t bytes : {1ul, 511ul, 513ul, 1000ul, 4096ul, 5000ul, 1ul << 20, (1ul << 20) + 1, 123456789ul}) {
        const std::size_t size = CachingAllocator::size_class(bytes);
        CAPTURE(bytes, size);
        REQUIRE(size >= bytes);
        REQUIRE(size <= std::max<std::size_t>(512, bytes + bytes / 4));
        REQUIRE(CachingAllocator::size_class(size) == size);  // a class is its own class
    }
    REQUIRE(CachingAllocator::size_class(5000) == CachingAllocator::size_class(5100));
}

TEST_CASE("freed blocks are reused, up to the cache limit", "[backends][allocator]") {
    FakeSystem sys;
    CachingAllocator alloc = sys.make(3 << 20, 1024);
    void* a = alloc.allocate(1 << 20);
    alloc.deallocate(a, 1 << 20);
    REQUIRE(alloc.cached_bytes() == 1 << 20);
    void* b = alloc.allocate((1 << 20) - 100);  // same size class: the same block comes back
    REQUIRE(b == a);
    REQUIRE(sys.allocations == 1);
    REQUIRE(alloc.cached_bytes() == 0);
    // Small requests bypass the cache.
    void* small = alloc.allocate(100);
    alloc.deallocate(small, 100);
    REQUIRE(sys.frees == 1);
    // Beyond the limit, a freed block goes back to the system.
    void* c = alloc.allocate(2 << 20);
    void* d = alloc.allocate(2 << 20);
    alloc.deallocate(b, 1 << 20);
    alloc.deallocate(c, 2 << 20);
    alloc.deallocate(d, 2 << 20);
    REQUIRE(alloc.cached_bytes() == 3 << 20);
    REQUIRE(sys.frees == 2);
    alloc.empty_cache();
    REQUIRE(alloc.cached_bytes() == 0);
    REQUIRE(sys.live.empty());
}

TEST_CASE("out of memory empties the cache and retries once", "[backends][allocator]") {
    FakeSystem sys;
    CachingAllocator alloc = sys.make(64 << 20, 1024);
    void* a = alloc.allocate(1 << 20);
    alloc.deallocate(a, 1 << 20);
    sys.out_of_memory = true;  // fails while anything is live, so only an emptied cache succeeds
    void* b = alloc.allocate(8 << 20);
    REQUIRE(b != nullptr);
    REQUIRE(alloc.cached_bytes() == 0);
    REQUIRE(alloc.allocate(8 << 20) == nullptr);  // still out of memory: null, not a throw
    alloc.deallocate(b, 8 << 20);
    alloc.empty_cache();
}

TEST_CASE("memory_stats reports the CPU cache and empty_cache clears it", "[backends][allocator]") {
    { Tensor big = zeros({1 << 20}); }  // 4 MiB, freed at once
    const MemoryStats before = memory_stats();
#ifdef LATTE_NO_ALLOCATOR_CACHE
    REQUIRE(before.cached_bytes == 0);
#else
    REQUIRE(before.cached_bytes >= (4 << 20));
#endif
    empty_cache();
    REQUIRE(memory_stats().cached_bytes == 0);
    REQUIRE(memory_stats().live_bytes == before.live_bytes);
}

TEST_CASE("system_allocations counts the large blocks the cache could not serve", "[backends][allocator]") {
    FakeSystem sys;
    CachingAllocator a = sys.make(1 << 20, 1024);
    void* small = a.allocate(100);  // below min_cached: not counted
    void* big = a.allocate(4096);
    REQUIRE(a.system_allocations() == 1);
    a.deallocate(big, 4096);
    void* again = a.allocate(4000);  // the same size class, from the cache
    REQUIRE(a.system_allocations() == 1);
    void* other = a.allocate(8192);
    REQUIRE(a.system_allocations() == 2);
    a.deallocate(again, 4000);
    a.deallocate(other, 8192);
    a.deallocate(small, 100);
    a.empty_cache();
}

TEST_CASE("after warm-up a training step takes no new large blocks from the system", "[backends][allocator][nn]") {
    Generator gen(3);
    nn::GroupedQueryAttention gqa(64, 64, 16, 16, 4, 2, gen);
    Tensor x = randn({4, 256, 64}, gen), y = randn({4, 256, 64}, gen), target = randn({4, 256, 64}, gen);
    nn::Adam opt(gqa.parameters(), 1e-3);
    auto step = [&] {
        mse_loss(gqa(x, y), target).backward();
        opt.step();
        opt.zero_grad();
    };
    for (int i = 0; i < 3; ++i) step();
    if (memory_stats().cached_bytes == 0) {
        WARN("the CPU block cache is off here (sanitizer build or LATTE_CPU_CACHE_MB=0): nothing to check");
        return;
    }
    const int64_t before = memory_stats().system_allocations;
    for (int i = 0; i < 3; ++i) step();
    REQUIRE(memory_stats().system_allocations == before);
}

TEST_CASE("a cache limit of 0 gives every request its exact size and frees it at once", "[backends][allocator]") {
    // What AddressSanitizer and compute-sanitizer need: no rounding slack to hide an overrun in,
    // no cached block to hide a use after free in (LATTE_CPU_CACHE_MB=0, LATTE_CUDA_CACHE_MB=0).
    std::vector<std::size_t> asked;
    int frees = 0;
    CachingAllocator a(
        [&](std::size_t bytes) -> void* {
            asked.push_back(bytes);
            return std::malloc(bytes);
        },
        [&](void* p) {
            ++frees;
            std::free(p);
        },
        0, 1024);
    void* p = a.allocate(5000);  // size class 5120 with a cache
    REQUIRE(asked == std::vector<std::size_t>{5000});
    a.deallocate(p, 5000);
    REQUIRE(frees == 1);
    REQUIRE(a.cached_bytes() == 0);
    REQUIRE(a.system_allocations() == 1);
}

TEST_CASE("the cache limits read from the environment are checked", "[backends][allocator]") {
    const char* name = "LATTE_TEST_CACHE_MB";
    ::unsetenv(name);
    REQUIRE(CachingAllocator::limit_from_env(name, 7) == (std::size_t(7) << 20));
    ::setenv(name, "0", 1);
    REQUIRE(CachingAllocator::limit_from_env(name, 7) == 0);
    ::setenv(name, "300", 1);
    REQUIRE(CachingAllocator::limit_from_env(name, 7) == (std::size_t(300) << 20));
    for (const char* bad : {"abc", "-1", "1.5", "", "3abc", " 3", "1099511627777", "99999999999999999999"}) {
        ::setenv(name, bad, 1);
        REQUIRE_THROWS_WITH(CachingAllocator::limit_from_env(name, 7),
                            "LATTE_TEST_CACHE_MB must be an integer from 0 to 1099511627776 (MiB of memory cache; 0 "
                            "turns the cache off), got '" + std::string(bad) + "'");
    }
    ::unsetenv(name);
}
