// The timing loop both training-step benchmarks share (bench_train.cpp, lm_step.cpp): three
// warm-up steps (optimizer state allocated, allocator cache filled), then the timed steps, then
// the memory counters.
#pragma once
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <vector>

#include "core/storage.h"

namespace latte::bench {

// Sorts the per-iteration wall times `ms` and reports their median as the counter median_ms,
// beside Google Benchmark's mean (Time).
inline void report_median_ms(benchmark::State& state, std::vector<double>& ms) {
    if (ms.empty()) return;
    std::sort(ms.begin(), ms.end());
    const size_t half = ms.size() / 2;
    state.counters["median_ms"] = ms.size() % 2 ? ms[half] : (ms[half - 1] + ms[half]) / 2;
}

// Runs `step` under `state` and reports, per step: median_ms (the median step; Time is
// Google Benchmark's mean, and the number of steps is its Iterations), tokens (a rate), peak_MiB (allocated during
// a step beyond what was live before: weights and optimizer state), peak_total_MiB (with them,
// like max_memory_allocated), and new_blocks (large blocks taken from the system rather than
// the allocator's cache during the timed steps: 0 once warm). Counter names carry no unit that
// the counter's own formatting adds: rates print as "tokens=67.2k/s".
inline void run_timed_steps(benchmark::State& state, Device device, const std::function<void()>& step,
                            double tokens_per_step) {
    for (int i = 0; i < 3; ++i) step();
    const MemoryStats before = memory_stats(device);
    reset_peak_memory(device);
    std::vector<double> ms;  // `step` ends with a device synchronize, so wall time is its time
    for (auto _ : state) {
        const auto start = std::chrono::steady_clock::now();
        step();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    const MemoryStats after = memory_stats(device);
    report_median_ms(state, ms);
    auto mib = [](int64_t bytes) { return std::round(double(bytes) / (1 << 20) * 10) / 10; };  // 0.1 MiB
    state.counters["new_blocks"] = double(after.system_allocations - before.system_allocations);
    state.counters["peak_MiB"] = mib(after.peak_bytes - before.live_bytes);
    state.counters["peak_total_MiB"] = mib(after.peak_bytes);
    state.counters["tokens"] = benchmark::Counter(tokens_per_step, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace latte::bench
