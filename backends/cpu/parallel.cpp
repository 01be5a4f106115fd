#include "backends/cpu/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/parse.h"

namespace latte::cpu {
namespace {

thread_local bool inside_parallel = false;

// Workers spin briefly on the generation counter before sleeping on the condition variable:
// a training step issues hundreds of short parallel loops, and waking a sleeping thread costs
// tens of microseconds on a VM, more than many of the loops themselves.
class ThreadPool {
public:
    // `source` names where the count came from, for the error: "LATTE_NUM_THREADS=1000".
    ThreadPool(int threads, const std::string& source) {
        LATTE_CHECK(threads >= 1 && threads <= kMaxThreads, "latte's thread pool: ", source, " asks for ", threads,
                    " threads; it takes 1 to ", kMaxThreads);
        workers_.reserve(static_cast<size_t>(threads - 1));
        // A thread that cannot start (the process's or the system's thread limit, no memory for its
        // stack) throws std::system_error. The destructor does not run for a constructor that
        // throws, and destroying a joinable std::thread, or a condition variable a thread still
        // waits on, ends or hangs the process: stop and join the started workers first.
        try {
            for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
        } catch (const std::exception& e) {
            const int started = size();  // the caller counts as one
            stop();
            LATTE_FAIL("latte's thread pool: ", source, " asks for ", threads, " threads, but only ", started,
                       " could start (", e.what(), "); set LATTE_NUM_THREADS to fewer");
        }
    }
    ~ThreadPool() { stop(); }
    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Runs task(i) for i in [0, size()): i = 0 on the caller, the rest on the workers.
    void run(const std::function<void(int)>& task) {
        std::lock_guard<std::mutex> serial(run_mutex_);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            task_ = &task;
            remaining_ = size() - 1;
            ++generation_;
        }
        wake_.notify_all();
        inside_parallel = true;
        task(0);
        inside_parallel = false;
        for (int spin = 0; spin < kSpins && remaining_.load(std::memory_order_acquire) != 0; ++spin) pause();
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [this] { return remaining_.load() == 0; });
        task_ = nullptr;
    }

private:
    static constexpr int kSpins = 20000;  // ~50 us of pause instructions

    static void pause() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        std::this_thread::yield();
#endif
    }

    void stop() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
            ++generation_;
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
    }

    void work(int index) {
        inside_parallel = true;
        uint64_t seen = 0;
        for (;;) {
            for (int spin = 0; spin < kSpins && generation_.load(std::memory_order_acquire) == seen; ++spin) pause();
            const std::function<void(int)>* task;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
                if (stop_) return;
                seen = generation_.load();
                task = task_;
            }
            (*task)(index);
            if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lock(mutex_);  // pairs with the caller's wait
                done_.notify_one();
            }
        }
    }

    std::vector<std::thread> workers_;
    std::mutex mutex_, run_mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(int)>* task_ = nullptr;
    std::atomic<int> remaining_{0};
    std::atomic<uint64_t> generation_{0};
    bool stop_ = false;
};

ThreadPool& pool() {
    // A constructor that throws leaves the static unset, so the next call tries again.
    static ThreadPool p(threads_from_environment(), [] {
        const char* env = std::getenv("LATTE_NUM_THREADS");
        return env ? "LATTE_NUM_THREADS=" + std::string(env) : std::string("the hardware's thread count");
    }());
    return p;
}

}  // namespace

int threads_from_environment() {
    const int64_t hardware = std::clamp<int64_t>(int64_t{std::thread::hardware_concurrency()}, 1, kMaxThreads);
    return static_cast<int>(env_int("LATTE_NUM_THREADS", hardware, 1, kMaxThreads, "threads in latte's pool"));
}

namespace detail {
int run_local_pool(int threads, const std::string& source) {
    ThreadPool local(threads, source);
    std::atomic<int> ran{0};
    local.run([&](int) { ran.fetch_add(1); });
    return ran.load();
}
}  // namespace detail

int num_threads() { return pool().size(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
    if (n <= 0) return;
    const int threads = inside_parallel ? 1 : static_cast<int>(std::min<int64_t>(num_threads(), n / std::max<int64_t>(grain, 1)));
    if (threads <= 1) {
        f(0, n);
        return;
    }
    const int64_t chunk = (n + pool().size() - 1) / pool().size();
    // An exception must not leave a pool thread (std::terminate) or the caller while workers still
    // run the task: each chunk catches, and the first error is rethrown once all chunks are done.
    std::mutex failure_mutex;
    std::exception_ptr failure;
    pool().run([&](int i) {
        const int64_t begin = std::min<int64_t>(n, chunk * i);
        const int64_t end = std::min<int64_t>(n, begin + chunk);
        if (begin >= end) return;
        try {
            f(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(failure_mutex);
            if (!failure) failure = std::current_exception();
        }
    });
    if (failure) std::rethrow_exception(failure);
}

}  // namespace latte::cpu
