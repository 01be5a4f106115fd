// Inference speed: the spec's Part 13 case (vanilla MHA vs the absorbed MLA path, forward
// only) and one decode step with an MHA K/V cache or an MLA latent cache at a few context
// lengths, with the bytes of cache each step reads. With a usable GPU every case also runs on
// cuda:0 (names ending in /cuda), synchronized per iteration. Cases are named by what they run:
//   part13_forward/vanilla, part13_forward/absorbed_precomputed, part13_forward/absorbed_factored
//   decode_step/mha_kv_cache/context_256 ... decode_step/mla_latent_cache/context_4096
//
// Each case warms up first (cuBLAS heuristics, the allocator's cache) and reports the median and
// the fastest step (counters median_ms and min_ms; JSON has both), the numbers
// scripts/part13_torch.py prints for PyTorch.
//
//   bench_inference [--steps n] [--contexts 256,1024,4096] [Google Benchmark flags]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "core/cuda.h"
#include "experiments/bench/bench_common.h"
#include "experiments/inference.h"
#include "experiments/memory.h"
#include "nn/absorbed.h"
#include "nn/decode.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "ops/ops.h"

namespace {

using namespace latte;

enum class Path { Vanilla, Precomputed, Factored };

// Part 13's exact sizes and weights (float32): vanilla MHA, or the absorbed MLA path in one form.
void part13_forward(benchmark::State& state, Path path, Device device) {
    experiments::AbsorbCase c;  // the spec's sizes and seed
    c.device = device;
    NoGradGuard no_grad;
    const experiments::Part13Models m = experiments::make_part13_models(c, DType::Float32);
    const nn::MultiHeadAttention& vanilla = *m.vanilla;
    const nn::AbsorbedLatentAttention absorbed(*m.mla, path == Path::Precomputed ? nn::AbsorbedForm::Precomputed
                                                                              : nn::AbsorbedForm::Factored);
    const Tensor &x = m.x, &y = m.y;
    Backend& backend = backend_for(device);
    auto forward = [&] { return path == Path::Vanilla ? vanilla.forward(x, y) : absorbed.forward(x, y); };
    for (int i = 0; i < 2; ++i) benchmark::DoNotOptimize(forward().view().data);  // warm-up, untimed
    backend.synchronize();
    bench::StepTimes times;
    for (auto _ : state)
        times.time([&] {
            Tensor out = forward();
            backend.synchronize();
            benchmark::DoNotOptimize(out.view().data);
        });
    times.report(state);
    const experiments::AbsorbGflop gflop = experiments::absorb_gflop(c);
    const double work = path == Path::Vanilla ? gflop.vanilla : path == Path::Precomputed ? gflop.precomputed : gflop.factored;
    // absorb_gflop counts GFLOP: the counter is in FLOP, so it prints as "FLOP=12.3G/s".
    state.counters["FLOP"] = benchmark::Counter(work * 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// One decode step for batch 8, D=1024, H=16, d=64: MHA caches 2*D = 2048 numbers per position,
// MLA (r = 256) caches 256. Each timed step appends one token, so the cache has room for `steps`.
constexpr int64_t kDecodeB = 8, kDecodeD = 1024;
void decode_step(benchmark::State& state, bool latent, int64_t context, int64_t steps, Device device) {
    const int64_t B = kDecodeB, D = kDecodeD, H = 16, d = 64, r = 256;
    NoGradGuard no_grad;
    Generator gen(1);
    std::shared_ptr<nn::Attention> module;
    if (latent) module = std::make_shared<nn::MultiHeadLatentAttention>(D, H, d, r, gen);
    else module = std::make_shared<nn::MultiHeadAttention>(D, D, d, d, H, gen);
    module->to(device);
    const TensorOptions on_device = TensorOptions{}.with_device(device);
    auto decoder = nn::make_decoder(*module, B, context + steps + 1);
    for (int64_t done = 0; done < context; done += 512)  // the context, cached without outputs
        decoder->append(randn({B, std::min<int64_t>(512, context - done), D}, gen, on_device));
    Tensor token = randn({B, 1, D}, gen, on_device);
    decoder->step(token);  // warm-up
    Backend& backend = backend_for(device);
    backend.synchronize();
    int64_t bytes_read = 0;
    bench::StepTimes times;
    for (auto _ : state)
        times.time([&] {
            bytes_read += decoder->cache_bytes();
            benchmark::DoNotOptimize(decoder->step(token).view().data);
            backend.synchronize();
        });
    times.report(state);
    state.counters["cache_MiB"] = double(decoder->cache_bytes()) / (1 << 20);
    // Bytes of cache read per second: prints as "cache_read_bytes=1.07G/s".
    state.counters["cache_read_bytes"] = benchmark::Counter(double(bytes_read), benchmark::Counter::kIsRate);
}

const char* kUsage = "bench_inference [--steps n] [--contexts n,n,...] [--benchmark_...]";

void print_help() {
    std::printf(
        "bench_inference: Part 13's forward (vanilla MHA, absorbed MLA precomputed and factored) and one\n"
        "decode step with an MHA K/V cache or an MLA latent cache after a context of n tokens.\n"
        "  --steps N           timed steps per case (default %lld), after untimed warm-up steps\n"
        "  --contexts LIST     decode contexts, comma separated (default 256,1024,4096)\n"
        "Google Benchmark's flags:\n", (long long)bench::kDefaultSteps);
    benchmark::PrintDefaultHelp();
}

// --contexts: positive token counts, comma separated.
std::vector<int64_t> take_contexts(const bench::CommonFlags& flags, int& argc, char** argv) {
    std::vector<int64_t> contexts{256, 1024, 4096};
    std::vector<char*> rest{argv[0]};
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i], value;
        if (arg == "--contexts") {
            if (i + 1 >= argc) bench::usage_error(flags, "--contexts needs a value");
            value = argv[++i];
        } else if (arg.rfind("--contexts=", 0) == 0) {
            value = arg.substr(11);
        } else {
            rest.push_back(argv[i]);
            continue;
        }
        contexts.clear();
        size_t start = 0;
        while (true) {
            const size_t comma = value.find(',', start);
            // Up to 2^30 tokens: the memory check below refuses what does not fit this machine.
            contexts.push_back(bench::parse_positive(flags, "--contexts", value.substr(start, comma - start), 1 << 30));
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    }
    argc = int(rest.size());
    for (int i = 0; i < argc; ++i) argv[i] = rest[size_t(i)];
    argv[argc] = nullptr;
    // The largest context's MHA K/V cache must fit in memory (it is allocated whole, for the
    // context and the steps): exit 2 now rather than fail (or be killed) inside the case.
    const int64_t context = *std::max_element(contexts.begin(), contexts.end());
    const double positions = double(context) + double(flags.min_time ? 1000 : flags.steps) + 1;
    try {
        experiments::check_memory("bench_inference", 4 * double(kDecodeB) * positions * 2 * double(kDecodeD),
                                  "the MHA K/V cache at context " + std::to_string(context) + ": " +
                                      std::to_string(kDecodeB) + " rows x " + std::to_string(int64_t(positions)) +
                                      " positions x " + std::to_string(2 * kDecodeD) + " float32");
    } catch (const Error& e) {
        bench::usage_error(flags, "--contexts " + std::to_string(context) + ": " + e.what());
    }
    return contexts;
}

void register_all(const bench::CommonFlags& flags, const std::vector<int64_t>& contexts) {
    std::vector<Device> devices{Device::cpu()};
    if (cuda::is_available()) devices.push_back(Device::cuda(0));
    const std::pair<Path, const char*> paths[] = {
        {Path::Vanilla, "vanilla"}, {Path::Precomputed, "absorbed_precomputed"}, {Path::Factored, "absorbed_factored"}};
    for (const Device device : devices) {
        const std::string on = device.is_cpu() ? "" : "/cuda";
        for (const auto& [path, name] : paths)
            bench::apply_steps(
                benchmark::RegisterBenchmark(("part13_forward/" + std::string(name) + on).c_str(),
                                             [path = path, device](benchmark::State& state) {
                                                 bench::guarded(state, [&] { part13_forward(state, path, device); });
                                             })
                    ->Unit(benchmark::kMillisecond)
                    ->UseRealTime(),
                flags);
        for (const bool latent : {false, true})
            for (const int64_t context : contexts) {
                const std::string name = std::string("decode_step/") + (latent ? "mla_latent_cache" : "mha_kv_cache") +
                                         "/context_" + std::to_string(context) + on;
                // Without --benchmark_min_time the cache holds exactly the steps timed; with it,
                // Google Benchmark picks the count: room for 1000.
                const int64_t steps = flags.min_time ? 1000 : flags.steps;
                bench::apply_steps(benchmark::RegisterBenchmark(name.c_str(),
                                                                [=](benchmark::State& state) {
                                                                    bench::guarded(state, [&] {
                                                                        decode_step(state, latent, context, steps, device);
                                                                    });
                                                                })
                                       ->Unit(benchmark::kMillisecond)
                                       ->UseRealTime(),
                                   flags);
            }
    }
}

}  // namespace

int main(int argc, char** argv) {
    const bench::CommonFlags flags = bench::take_common_flags("bench_inference", kUsage, argc, argv);
    const std::vector<int64_t> contexts = take_contexts(flags, argc, argv);
    bench::initialize(flags, argc, argv, print_help);
    register_all(flags, contexts);
    return bench::run_benchmarks(flags);
}
