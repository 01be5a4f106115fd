// Inference speed: the spec's Part 13 case (vanilla MHA vs the absorbed MLA path, forward
// only) and one decode step with an MHA K/V cache or an MLA latent cache at a few context
// lengths, with the bytes of cache each step reads. With a usable GPU every case also runs on
// cuda:0 (arg device = 1), synchronized per iteration.
//
// Part 13 warms up first (cuBLAS heuristics, the allocator's cache) and reports, besides Google
// Benchmark's mean, the median and the fastest iteration (counters median_ms and min_ms), the
// numbers scripts/part13_torch.py prints for PyTorch.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/autograd.h"
#include "core/cuda.h"
#include "experiments/bench/timed_steps.h"
#include "experiments/inference.h"
#include "nn/absorbed.h"
#include "nn/decode.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "ops/ops.h"

namespace {

using namespace latte;

// Part 13's exact sizes and weights (float32). Arg: 0 vanilla, 1 absorbed precomputed, 2 absorbed factored.
void BM_part13_forward(benchmark::State& state) {
    const int64_t path = state.range(0);
    const Device device = state.range(1) == 1 ? Device::cuda(0) : Device::cpu();
    experiments::AbsorbCase c;  // the spec's sizes and seed
    c.device = device;
    NoGradGuard no_grad;
    const experiments::Part13Models m = experiments::make_part13_models(c, DType::Float32);
    const nn::MultiHeadAttention& vanilla = *m.vanilla;
    const nn::AbsorbedLatentAttention absorbed(*m.mla, path == 1 ? nn::AbsorbedForm::Precomputed
                                                                : nn::AbsorbedForm::Factored);
    const Tensor &x = m.x, &y = m.y;
    Backend& backend = backend_for(device);
    auto forward = [&] { return path == 0 ? vanilla.forward(x, y) : absorbed.forward(x, y); };
    for (int i = 0; i < 2; ++i) benchmark::DoNotOptimize(forward().view().data);  // warm-up, untimed
    backend.synchronize();
    std::vector<double> ms;
    for (auto _ : state) {
        const auto start = std::chrono::steady_clock::now();
        Tensor out = forward();
        backend.synchronize();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        benchmark::DoNotOptimize(out.view().data);
    }
    bench::report_median_ms(state, ms);  // sorts ms
    state.counters["min_ms"] = ms.front();
    const experiments::AbsorbGflop gflop = experiments::absorb_gflop(c);
    const double work = path == 0 ? gflop.vanilla : path == 1 ? gflop.precomputed : gflop.factored;
    state.counters["GFLOP/s"] = benchmark::Counter(work, benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(path == 0 ? "vanilla" : path == 1 ? "absorbed, precomputed" : "absorbed, factored");
}

constexpr int64_t kSteps = 20;  // timed decode steps (each appends one token)

// One decode step for batch 8, D=1024, H=16, d=64: MHA caches 2*D = 2048 numbers per position,
// MLA (r = 256) caches 256.
void BM_decode_step(benchmark::State& state) {
    const bool latent = state.range(0) == 1;
    const int64_t context = state.range(1), B = 8, D = 1024, H = 16, d = 64, r = 256;
    const Device device = state.range(2) == 1 ? Device::cuda(0) : Device::cpu();
    NoGradGuard no_grad;
    Generator gen(1);
    std::shared_ptr<nn::Attention> module;
    if (latent) module = std::make_shared<nn::MultiHeadLatentAttention>(D, H, d, r, gen);
    else module = std::make_shared<nn::MultiHeadAttention>(D, D, d, d, H, gen);
    module->to(device);
    const TensorOptions on_device = TensorOptions{}.with_device(device);
    auto decoder = nn::make_decoder(*module, B, context + kSteps + 1);
    for (int64_t done = 0; done < context; done += 512)  // the context, cached without outputs
        decoder->append(randn({B, std::min<int64_t>(512, context - done), D}, gen, on_device));
    Tensor token = randn({B, 1, D}, gen, on_device);
    decoder->step(token);  // warm-up
    Backend& backend = backend_for(device);
    backend.synchronize();
    int64_t bytes_read = 0;
    for (auto _ : state) {
        bytes_read += decoder->cache_bytes();
        benchmark::DoNotOptimize(decoder->step(token).view().data);
        backend.synchronize();
    }
    state.counters["cache_MiB"] = double(decoder->cache_bytes()) / (1 << 20);
    state.counters["cache_read_GB/s"] = benchmark::Counter(double(bytes_read) / 1e9, benchmark::Counter::kIsRate);
    state.SetLabel(latent ? "MLA latent cache" : "MHA K/V cache");
}

// The devices to run on: the CPU, and cuda:0 when one is usable.
std::vector<int64_t> devices() {
    return cuda::is_available() ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0};
}

// Part 13 on the CPU takes about 0.3 s a forward, on a GPU about 2 ms: more iterations there.
BENCHMARK(BM_part13_forward)
    ->ArgNames({"path", "device"})
    ->ArgsProduct({{0, 1, 2}, {0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);
// Registered only with a usable GPU: a family without arguments would run once with none.
[[maybe_unused]] const bool kPart13OnGpu = cuda::is_available() &&
                          benchmark::RegisterBenchmark("BM_part13_forward", BM_part13_forward)
                              ->ArgNames({"path", "device"})
                              ->ArgsProduct({{0, 1, 2}, {1}})
                              ->Unit(benchmark::kMillisecond)
                              ->UseRealTime()
                              ->Iterations(50) != nullptr;
BENCHMARK(BM_decode_step)
    ->ArgNames({"latent", "context", "device"})
    ->ArgsProduct({{0, 1}, {256, 1024, 4096}, devices()})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(kSteps);

}  // namespace

BENCHMARK_MAIN();
