// A small persistent thread pool for the CPU kernels. Threads sleep between calls (no spinning),
// so they do not steal cores from OpenBLAS's own threads.
#pragma once
#include <cstdint>
#include <functional>

namespace latte::cpu {

// Number of threads used (LATTE_NUM_THREADS, else the hardware's).
int num_threads();
// Calls f(begin, end) on disjoint chunks covering [0, n). Runs serially when n < 2 * grain,
// when one thread is configured, or when called from inside a parallel region. If f throws, the
// first exception reaches the caller once every chunk has ended; the pool stays usable.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

}  // namespace latte::cpu
