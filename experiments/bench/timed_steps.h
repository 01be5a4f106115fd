// The timing loop both training-step benchmarks share (bench_train.cpp, lm_step.cpp): three
// warm-up steps (optimizer state allocated, allocator cache filled), then the timed steps, then
// the memory counters.
#pragma once
#include <benchmark/benchmark.h>

#include <cmath>
#include <functional>

#include "core/storage.h"
#include "experiments/bench/bench_common.h"

namespace latte::bench {

// Runs `step` under `state` and reports, per step: median_ms (the median step, which the console
// report shows; the number of steps is Google Benchmark's Iterations), tokens (a rate), peak_MiB (allocated during
// a step beyond what was live before: weights and optimizer state), peak_total_MiB (with them,
// like max_memory_allocated), and new_blocks (large blocks taken from the system rather than
// the allocator's cache during the timed steps: 0 once warm). Counter names carry no unit that
// the counter's own formatting adds: rates print as "tokens=67.2k/s".
inline void run_timed_steps(benchmark::State& state, Device device, const std::function<void()>& step,
                            double tokens_per_step) {
    for (int i = 0; i < 3; ++i) step();
    const MemoryStats before = memory_stats(device);
    reset_peak_memory(device);
    StepTimes times;  // `step` ends with a device synchronize, so wall time is its time
    for (auto _ : state) times.time(step);
    const MemoryStats after = memory_stats(device);
    times.report(state);
    auto mib = [](int64_t bytes) { return std::round(double(bytes) / (1 << 20) * 10) / 10; };  // 0.1 MiB
    state.counters["new_blocks"] = double(after.system_allocations - before.system_allocations);
    state.counters["peak_MiB"] = mib(after.peak_bytes - before.live_bytes);
    state.counters["peak_total_MiB"] = mib(after.peak_bytes);
    state.counters["tokens"] = benchmark::Counter(tokens_per_step, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace latte::bench
