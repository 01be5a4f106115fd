// What the bench programs share: their common flag (--steps), a bad flag answered by exit 2 and
// a message naming it (never an abort), a latte::Error inside a benchmark reported as that case's
// error, and a console report that shows one time per case, the median step.
//
// The console report replaces Google Benchmark's: that one shows the mean (`Time`) and the CPU
// time beside our median, and Debian's libbenchmark (built without NDEBUG) starts it with
// "***WARNING*** Library was built as DEBUG", which is about libbenchmark's own code, not latte's
// (latte is built as Release). --benchmark_format=json or csv keeps Google Benchmark's reporter.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace latte::bench {

constexpr int64_t kDefaultSteps = 10;

struct CommonFlags {
    std::string program;          // for messages: "bench_train"
    std::string usage;            // the program's usage line
    int64_t steps = kDefaultSteps;  // timed steps per case (--steps N)
    bool min_time = false;        // --benchmark_min_time given: Google Benchmark picks the count
    bool console = true;          // no --benchmark_format=json|csv
    std::string filter;           // --benchmark_filter, for messages
};

// Prints "<program>: <message>" and the usage line to stderr, then exits 2.
[[noreturn]] void usage_error(const CommonFlags& flags, const std::string& message);

// `text` as an integer in [1, max]; exits 2 naming `flag` otherwise.
int64_t parse_positive(const CommonFlags& flags, const std::string& flag, const std::string& text,
                       int64_t max = int64_t{1} << 40);

// The most --benchmark_repetitions taken.
constexpr int64_t kMaxRepetitions = 10000;

// Exits 2 naming the flag when `arg` is one of Google Benchmark's flags with a value it would
// take badly: --benchmark_repetitions outside 1..kMaxRepetitions (-1 aborted the program),
// --benchmark_format or --benchmark_out_format other than console, json or csv, and
// --benchmark_time_unit other than ns, us, ms or s (those printed the help and exited 0), and a
// --benchmark_out file that cannot be written. Other arguments pass.
void check_benchmark_flag(const CommonFlags& flags, const std::string& arg);

// Starts latte's thread pool and CPU allocator (a bad LATTE_NUM_THREADS, LATTE_CPU_CACHE_MB or
// LATTE_CUDA_CACHE_MB exits 2), takes --steps N (or --steps=N)
// out of argv and notes the Google Benchmark flags that change what is timed or shown
// (check_benchmark_flag checks their values). A flag that wants a value and has none exits 2.
CommonFlags take_common_flags(const std::string& program, const std::string& usage, int& argc, char** argv);

// A case runs flags.steps timed steps, unless --benchmark_min_time was given (then Google
// Benchmark picks how many, from the time).
void apply_steps(benchmark::internal::Benchmark* b, const CommonFlags& flags);

// benchmark::AddCustomContext, also shown at the top of the console report.
void add_context(const std::string& key, const std::string& value);

// Per-step wall times of one case: time(step) runs and times a step; report() sets the counter
// median_ms (what the console report shows, and what JSON consumers read).
class StepTimes {
public:
    void time(const std::function<void()>& step);
    void report(benchmark::State& state);  // also min_ms
private:
    std::vector<double> ms_;
};

// Runs body; a latte::Error (a size only the model refuses, say) becomes this case's error
// instead of terminating the program.
void guarded(benchmark::State& state, const std::function<void()>& body);

// Initializes Google Benchmark with what is left of argv (--help prints `help`); a flag it does
// not know exits 2.
void initialize(const CommonFlags& flags, int& argc, char** argv, void (*help)());
// Runs the registered cases and returns the exit code: 0, 1 when a case reported an error, or 2
// (with a message) when --benchmark_filter matched no case or is not a valid regular expression.
int run_benchmarks(const CommonFlags& flags);

}  // namespace latte::bench
