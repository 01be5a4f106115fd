// A small persistent thread pool for the CPU kernels. Threads sleep between calls (no spinning),
// so they do not steal cores from OpenBLAS's own threads.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace latte::cpu {

// The most threads the pool takes: LATTE_NUM_THREADS above it is refused, and the default (the
// hardware's threads) is cut to it. Fixed rather than a multiple of the hardware's threads, so a
// value that works on one machine works on every other; above any CPU latte runs on today (two
// 192-core sockets with SMT have 768), and far above the useful count: each parallel loop is cut
// into one chunk per thread, so threads beyond the cores only add waits.
constexpr int kMaxThreads = 1024;

// Number of threads used (LATTE_NUM_THREADS, else the hardware's, at most kMaxThreads). The pool
// starts at the first call; if LATTE_NUM_THREADS is not a whole integer from 1 to kMaxThreads, or
// the threads cannot all start, it throws latte::Error saying which (and a later call tries again).
int num_threads();
// The count the pool starts with: LATTE_NUM_THREADS read strictly (see num_threads), else
// std::thread::hardware_concurrency() (1 when unknown) cut to kMaxThreads.
int threads_from_environment();
// Calls f(begin, end) on disjoint chunks covering [0, n). Runs serially when n < 2 * grain,
// when one thread is configured, or when called from inside a parallel region. If f throws, the
// first exception reaches the caller once every chunk has ended; the pool stays usable.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// Multiply-adds below which a product, or a task of products, stays on one thread: the grain of
// every matrix-product loop (OpenBLAS tiles, the bf16 kernel, autocast's per-head batches).
constexpr int64_t kGemmGrain = int64_t{1} << 20;

// Rows per task for loops that go row by row over rows of `cols` elements: about 16384 elements
// a task, and at least one row.
inline int64_t row_grain(int64_t cols) { return cols >= 16384 ? 1 : 16384 / (cols > 0 ? cols : 1); }

namespace detail {
// For tests (the process's pool starts once): starts a pool of `threads` threads the way
// num_threads() starts its own, runs one task on every thread, stops the pool and returns how
// many threads ran it. A thread that cannot start ends it with latte::Error naming `source`, after
// the threads already started are stopped and joined.
int run_local_pool(int threads, const std::string& source);
}  // namespace detail

}  // namespace latte::cpu
