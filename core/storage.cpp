#include "core/storage.h"

#include <map>
#include <mutex>

#include "core/backend.h"
#include "core/error.h"

namespace latte {
namespace {

struct StatsTable {
    std::mutex mutex;
    std::map<std::pair<int, int>, MemoryStats> stats;
};

StatsTable& table() {
    static StatsTable t;
    return t;
}

std::pair<int, int> key(Device d) { return {static_cast<int>(d.type), d.index}; }

void record(Device device, int64_t delta) {
    auto& t = table();
    std::lock_guard<std::mutex> lock(t.mutex);
    MemoryStats& s = t.stats[key(device)];
    s.live_bytes += delta;
    if (delta > 0) ++s.allocations;
    if (s.live_bytes > s.peak_bytes) s.peak_bytes = s.live_bytes;
}

}  // namespace

MemoryStats memory_stats(Device device) {
    MemoryStats s;
    {
        auto& t = table();
        std::lock_guard<std::mutex> lock(t.mutex);
        s = t.stats[key(device)];
    }
    s.cached_bytes = static_cast<int64_t>(backend_for(device).cached_bytes());
    s.system_allocations = static_cast<int64_t>(backend_for(device).system_allocations());
    return s;
}

void empty_cache(Device device) { backend_for(device).empty_cache(); }

void reset_peak_memory(Device device) {
    auto& t = table();
    std::lock_guard<std::mutex> lock(t.mutex);
    MemoryStats& s = t.stats[key(device)];
    s.peak_bytes = s.live_bytes;
}

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
    data_ = backend_for(device).allocate(bytes);
    record(device, static_cast<int64_t>(bytes));
}

Storage::~Storage() {
    backend_for(device_).deallocate(data_, bytes_);
    record(device_, -static_cast<int64_t>(bytes_));
}

}  // namespace latte
