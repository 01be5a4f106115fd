#include "experiments/bench/bench_common.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <ostream>
#include <utility>

#include "backends/common/caching_allocator.h"
#include "backends/cpu/parallel.h"
#include "core/atomic_file.h"
#include "core/factory.h"

namespace latte::bench {
namespace {

std::vector<std::pair<std::string, std::string>>& contexts() {
    static std::vector<std::pair<std::string, std::string>> list;
    return list;
}

bool g_case_failed = false;  // set by guarded(): the exit code becomes 1

// 3 significant digits with an SI prefix: 1234567 -> "1.23M", 0.5 -> "0.5".
std::string si(double v) {
    const char* prefixes[] = {"", "k", "M", "G", "T", "P"};
    int p = 0;
    while (std::fabs(v) >= 999.5 && p < 5) {
        v /= 1000;
        ++p;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g%s", v, prefixes[p]);
    return buf;
}

// 3 significant digits, trailing zeros kept: "2.00 ms", "13.6 ms", "711 us", "1.25 s".
std::string time_text(double ms) {
    const char* unit = "ms";
    double v = ms;
    if (ms >= 1000) {
        v = ms / 1000;
        unit = "s";
    } else if (ms < 1) {
        v = ms * 1000;
        unit = "us";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, unit);
    return buf;
}

// Google Benchmark's name without the parts that describe how it was run
// ("/iterations:10/real_time"), with the aggregate ("_median") of --benchmark_repetitions.
std::string case_name(const benchmark::BenchmarkReporter::Run& run) {
    std::string name = run.run_name.function_name;
    if (!run.run_name.args.empty()) name += "/" + run.run_name.args;
    if (!run.run_name.repetitions.empty()) name += "/" + run.run_name.repetitions;
    if (run.run_type == benchmark::BenchmarkReporter::Run::RT_Aggregate) name += "_" + run.aggregate_name;
    return name;
}

// One line per case: its name, the median step, how many steps were timed, then the counters
// (rates end in /s) and the case's label.
class MedianReporter final : public benchmark::BenchmarkReporter {
public:
    explicit MedianReporter(const CommonFlags& flags) : flags_(flags) {}

    bool ReportContext(const Context& context) override {
        std::ostream& out = GetOutputStream();
        out << flags_.program << " on " << context.cpu_info.num_cpus << " CPUs";
        for (const auto& [key, value] : contexts()) out << "; " << key << " " << value;
        out << "\nmedian: the median wall time of a case's timed steps (steps: how many, "
            << (flags_.min_time ? "as --benchmark_min_time allowed" : "--steps " + std::to_string(flags_.steps))
            << "), after untimed warm-up steps; rates (/s) are per second of the median step.\n";
        // Google Benchmark's widest name ends in "/iterations:N/real_time", which case_name drops.
        const size_t suffix = std::string("/real_time").size() +
                              (flags_.min_time ? 0 : std::string("/iterations:" + std::to_string(flags_.steps)).size());
        width_ = std::max<size_t>(24, context.name_field_width > suffix ? context.name_field_width - suffix : 0);
        out << pad("case", width_) << "  " << pad("median", 10) << "  " << pad("steps", 6) << "  counters\n";
        return true;
    }

    void ReportRuns(const std::vector<Run>& runs) override {
        std::ostream& out = GetOutputStream();
        for (const Run& run : runs) {
            out << pad(case_name(run), width_) << "  ";
            if (run.error_occurred) {
                out << "ERROR: " << run.error_message << "\n";
                continue;
            }
            const auto median = run.counters.find("median_ms");
            // Every latte case times its steps; a case that does not shows Google Benchmark's mean.
            const std::string time = median != run.counters.end()
                                         ? time_text(median->second.value)
                                         : time_text(run.GetAdjustedRealTime() *
                                                     (run.time_unit == benchmark::kSecond        ? 1e3
                                                      : run.time_unit == benchmark::kMillisecond ? 1.0
                                                      : run.time_unit == benchmark::kMicrosecond ? 1e-3
                                                                                                 : 1e-6)) +
                                               " (mean)";
            out << pad(time, 10) << "  " << pad(std::to_string(run.iterations), 6) << " ";
            // Google Benchmark divides rates by the mean step; shown per second of the median step.
            const double mean_s = run.iterations > 0 ? run.real_accumulated_time / double(run.iterations) : 0;
            const double rescale = median != run.counters.end() && median->second.value > 0 && mean_s > 0
                                       ? mean_s / (median->second.value / 1e3)
                                       : 1.0;
            for (const auto& [name, counter] : run.counters) {
                if (name == "median_ms" || name == "min_ms") continue;  // min_ms stays in JSON
                const bool rate = counter.flags & benchmark::Counter::kIsRate;
                out << " " << name << "=" << si(rate ? counter.value * rescale : counter.value) << (rate ? "/s" : "");
            }
            if (!run.report_label.empty()) out << "  (" << run.report_label << ")";
            out << "\n";
        }
        out.flush();
    }

private:
    static std::string pad(const std::string& s, size_t width) {
        return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
    }
    CommonFlags flags_;
    size_t width_ = 24;
};

}  // namespace

void usage_error(const CommonFlags& flags, const std::string& message) {
    std::fprintf(stderr, "%s: %s\nusage: %s\n", flags.program.c_str(), message.c_str(), flags.usage.c_str());
    std::exit(2);
}

int64_t parse_positive(const CommonFlags& flags, const std::string& flag, const std::string& text, int64_t max) {
    int64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || value < 1 || value > max)
        usage_error(flags, flag + " wants an integer from 1 to " + std::to_string(max) + ", got '" + text + "'");
    return value;
}

void check_benchmark_flag(const CommonFlags& flags, const std::string& arg) {
    const size_t eq = arg.find('=');
    if (arg.rfind("--benchmark_", 0) != 0 || eq == std::string::npos) return;
    const std::string flag = arg.substr(0, eq), value = arg.substr(eq + 1);
    auto one_of = [&](std::initializer_list<const char*> names) {
        for (const char* name : names)
            if (value == name) return;
        std::string list;
        for (const char* name : names) list += (list.empty() ? "" : ", ") + std::string(name);
        usage_error(flags, flag + " wants one of " + list + ", got '" + value + "'");
    };
    if (flag == "--benchmark_repetitions") {
        // Google Benchmark reserves room for every repetition: -1 ended in std::length_error.
        parse_positive(flags, flag, value, kMaxRepetitions);
    } else if (flag == "--benchmark_format" || flag == "--benchmark_out_format") {
        one_of({"console", "json", "csv"});  // anything else printed the help and exited 0
    } else if (flag == "--benchmark_time_unit") {
        one_of({"ns", "us", "ms", "s"});
    } else if (flag == "--benchmark_out") {
        try {  // Google Benchmark would exit 1 only after the cases' setup
            check_output_path(value, flag);
        } catch (const Error& e) {
            usage_error(flags, e.what());
        }
    }
}

CommonFlags take_common_flags(const std::string& program, const std::string& usage, int& argc, char** argv) {
    CommonFlags flags;
    flags.program = program;
    flags.usage = usage;
    // The thread pool reads LATTE_NUM_THREADS as it starts, and the first tensor
    // LATTE_CPU_CACHE_MB: a bad value (or threads that cannot start) exits 2 here, not in
    // std::terminate from the first op run outside a case.
    try {
        cpu::num_threads();
        zeros({1});
        CachingAllocator::limit_from_env("LATTE_CUDA_CACHE_MB", 0);  // read by CUDA only, checked by all
    } catch (const Error& e) {
        usage_error(flags, e.what());
    }
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--steps" || arg.rfind("--steps=", 0) == 0) {
            std::string value;
            if (arg == "--steps") {
                if (i + 1 >= argc) usage_error(flags, "--steps needs a value");
                value = argv[++i];
            } else {
                value = arg.substr(8);
            }
            flags.steps = parse_positive(flags, "--steps", value, 1'000'000);
            continue;
        }
        if (arg.rfind("--benchmark_min_time", 0) == 0) flags.min_time = true;
        if (arg.rfind("--benchmark_format=", 0) == 0) flags.console = arg == "--benchmark_format=console";
        if (arg.rfind("--benchmark_filter=", 0) == 0) flags.filter = arg.substr(19);
        check_benchmark_flag(flags, arg);
        rest.push_back(argv[i]);
    }
    argc = int(rest.size());
    for (int i = 0; i < argc; ++i) argv[i] = rest[size_t(i)];
    argv[argc] = nullptr;
    return flags;
}

void apply_steps(benchmark::internal::Benchmark* b, const CommonFlags& flags) {
    if (!flags.min_time) b->Iterations(flags.steps);
}

void add_context(const std::string& key, const std::string& value) {
    benchmark::AddCustomContext(key, value);
    contexts().emplace_back(key, value);
}

void StepTimes::time(const std::function<void()>& step) {
    const auto start = std::chrono::steady_clock::now();
    step();
    ms_.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
}

void StepTimes::report(benchmark::State& state) {
    if (ms_.empty()) return;
    std::sort(ms_.begin(), ms_.end());
    const size_t half = ms_.size() / 2;
    state.counters["median_ms"] = ms_.size() % 2 ? ms_[half] : (ms_[half - 1] + ms_[half]) / 2;
    state.counters["min_ms"] = ms_.front();
}

void guarded(benchmark::State& state, const std::function<void()>& body) {
    try {
        body();
    } catch (const Error& e) {
        g_case_failed = true;
        state.SkipWithError(e.what());
    }
}

void initialize(const CommonFlags& flags, int& argc, char** argv, void (*help)()) {
    benchmark::Initialize(&argc, argv, help);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        std::fprintf(stderr, "usage: %s\n", flags.usage.c_str());
        std::exit(2);
    }
}

int run_benchmarks(const CommonFlags& flags) {
    size_t matched = 0;
    if (flags.console) {
        MedianReporter reporter(flags);
        matched = benchmark::RunSpecifiedBenchmarks(&reporter);
    } else {
        matched = benchmark::RunSpecifiedBenchmarks();
    }
    benchmark::Shutdown();
    if (matched == 0) {  // Google Benchmark said why (no match, or a bad regex) and returned 0
        std::fprintf(stderr, "%s: no case ran: %s\nusage: %s\n", flags.program.c_str(),
                     flags.filter.empty() ? "none of the chosen cases runs on this machine"
                                          : ("--benchmark_filter=" + flags.filter +
                                             " matches none of the cases, or is not a valid regular expression")
                                                .c_str(),
                     flags.usage.c_str());
        return 2;
    }
    return g_case_failed ? 1 : 0;
}

}  // namespace latte::bench
