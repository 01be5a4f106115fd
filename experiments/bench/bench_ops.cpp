// Matmul throughput: latte::matmul beside a direct cblas_sgemm on the same shapes, in one run.
// Both go through the OpenBLAS that latte loaded, so both run the same kernels. fma_peak gives
// the ceiling above both: the float32 FMA rate of all cores, with no memory traffic at all.
// Then attention with a learned temperature: a tensor scale on the fused kernel, beside the same
// attention composed from ops and beside the fused kernel with a plain number.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cmath>
#include <cstdio>
#include <thread>
#include <utility>

#include "backends/cpu/blas.h"
#include "experiments/bench/bench_common.h"
#include "nn/attention.h"
#include "ops/ops.h"

namespace {

using namespace latte;

void set_flops(benchmark::State& state, double flops_per_iter) {
    // Prints as "FLOP=197G/s": the rate adds the "/s", the name carries no unit of its own.
    state.counters["FLOP"] = benchmark::Counter(flops_per_iter, benchmark::Counter::kIsIterationInvariantRate);
}

// latte: (batch, m, k) @ (batch, k, n) float32.
void BM_latte_matmul(benchmark::State& state) {
    const int64_t batch = state.range(0), m = state.range(1), k = state.range(2), n = state.range(3);
    Generator gen(1);
    Tensor a = randn(batch > 1 ? Shape{batch, m, k} : Shape{m, k}, gen);
    Tensor b = randn(batch > 1 ? Shape{batch, k, n} : Shape{k, n}, gen);
    bench::StepTimes times;
    for (auto _ : state) times.time([&] { benchmark::DoNotOptimize(matmul(a, b).view().data); });
    times.report(state);
    set_flops(state, 2.0 * batch * m * n * k);
}

// The same products as direct cblas_sgemm calls, one per batch: the ceiling latte should reach.
void BM_cblas_sgemm(benchmark::State& state) {
    const int64_t batch = state.range(0), m = state.range(1), k = state.range(2), n = state.range(3);
    Generator gen(1);
    std::vector<float> a = randn({batch, m, k}, gen).to_vector<float>();
    std::vector<float> b = randn({batch, k, n}, gen).to_vector<float>();
    std::vector<float> c(static_cast<size_t>(batch * m * n));
    // OpenBLAS with all its threads, as a program calling it directly would run it (latte keeps
    // OpenBLAS at one thread and splits the work over its own pool).
    const int threads = static_cast<int>(std::thread::hardware_concurrency());
    bench::StepTimes times;
    for (auto _ : state)
        times.time([&] {
            for (int64_t i = 0; i < batch; ++i)
                cpu::direct_sgemm(threads, m, n, k, a.data() + i * m * k, b.data() + i * k * n, c.data() + i * m * n);
            benchmark::DoNotOptimize(c.data());
        });
    times.report(state);
    set_flops(state, 2.0 * batch * m * n * k);
}

// One thread's float32 FMA chains: 12 independent accumulators hide the FMA latency, so the loop
// runs at the core's FMA throughput. Returns the FLOP done; the sum keeps the work observable.
constexpr int kChains = 12;

__attribute__((target("avx512f"))) double fma_chains_avx512(int64_t rounds, float* sink) {
    __m512 acc[kChains];
    const __m512 scale = _mm512_set1_ps(0.999999f), bias = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], scale, bias);
    for (int i = 0; i < kChains; ++i) *sink += _mm512_reduce_add_ps(acc[i]);
    return 2.0 * 16 * kChains * static_cast<double>(rounds);
}

__attribute__((target("avx2,fma"))) double fma_chains_avx2(int64_t rounds, float* sink) {
    __m256 acc[kChains];
    const __m256 scale = _mm256_set1_ps(0.999999f), bias = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], scale, bias);
    alignas(32) float lanes[8];
    for (int i = 0; i < kChains; ++i) {
        _mm256_store_ps(lanes, acc[i]);
        for (float v : lanes) *sink += v;
    }
    return 2.0 * 8 * kChains * static_cast<double>(rounds);
}

double fma_chains_scalar(int64_t rounds, float* sink) {
    float acc[kChains];
    for (int i = 0; i < kChains; ++i) acc[i] = static_cast<float>(i);
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < kChains; ++i) acc[i] = std::fma(acc[i], 0.999999f, 1e-7f);
    for (float v : acc) *sink += v;
    return 2.0 * kChains * static_cast<double>(rounds);
}

// The float32 arithmetic peak of the machine: FMA chains on every core at once, in the widest
// vectors the CPU has. No float32 matmul, ours or OpenBLAS's, can beat it, so a training step's
// matmul FLOP divided by this rate is a floor on its time.
void BM_fma_peak(benchmark::State& state) {
    const bool avx512 = __builtin_cpu_supports("avx512f");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int threads = static_cast<int>(std::thread::hardware_concurrency());
    const int64_t rounds = 4'000'000;  // about 10 ms per thread at AVX-512 speed
    double flops = 0;
    std::vector<float> sinks(static_cast<size_t>(threads) * 16);  // a cache line apart
    bench::StepTimes times;
    for (auto _ : state) times.time([&] {
        std::vector<std::thread> pool;
        std::vector<double> done(static_cast<size_t>(threads));
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                float* sink = &sinks[static_cast<size_t>(t) * 16];
                done[t] = avx512 ? fma_chains_avx512(rounds, sink)
                          : avx2 ? fma_chains_avx2(rounds, sink)
                                 : fma_chains_scalar(rounds, sink);
            });
        for (auto& thread : pool) thread.join();
        flops = 0;
        for (double d : done) flops += d;
    });
    times.report(state);
    benchmark::DoNotOptimize(sinks.data());
    set_flops(state, flops);
    state.SetLabel(std::string(avx512 ? "avx512" : avx2 ? "avx2+fma" : "scalar") + ", " +
                   std::to_string(threads) + " threads");
}

// Forward and backward of self-attention over projections q, k, v (B 8, L 128, H 8, d 32: the
// small config's heads) with a per-head temperature, causal. `form` picks how:
//   0 the fused kernel with a tensor scale (H), which gets its gradient;
//   1 the same attention composed from ops (what a learned temperature needed before);
//   2 the fused kernel with a plain number (no temperature: the floor).
void attention_temperature(benchmark::State& state, int form) {
    const int64_t B = 8, L = 128, H = 8, d = 32;
    Generator gen(3);
    const TensorOptions grad = TensorOptions{}.with_requires_grad(true);
    const Tensor q = randn({B, L, H * d}, gen, grad), k = randn({B, L, H * d}, gen, grad),
                 v = randn({B, L, H * d}, gen, grad);
    const Tensor temperature = full({H}, 1.0 / std::sqrt(double(d)), grad);
    const Tensor weights = randn({B, L, H * d}, gen);  // the loss sum(out * weights) reaches every output
    auto composed = [&] {
        // (B, H, L, d) heads, scores scaled per head, softmax, then back to (B, L, H*d).
        auto heads = [&](const Tensor& t) { return t.reshape({B, L, H, d}).permute({0, 2, 1, 3}); };
        Tensor scores = heads(q).matmul(heads(k).transpose(-1, -2)) * temperature.reshape({1, H, 1, 1});
        scores = scores + nn::causal_mask(L, L, q.options());
        return scores.softmax(-1).matmul(heads(v)).permute({0, 2, 1, 3}).reshape({B, L, H * d});
    };
    bench::StepTimes times;
    for (auto _ : state)
        times.time([&] {
            const Tensor out = form == 0   ? nn::grouped_attention(q, k, v, H, H, true, temperature)
                               : form == 1 ? composed()
                                           : nn::grouped_attention(q, k, v, H, H, true, 1.0 / std::sqrt(double(d)));
            (out * weights).sum().backward();
        });
    times.report(state);
    state.SetLabel(form == 0 ? "fused, tensor scale" : form == 1 ? "composed from ops" : "fused, number");
}

const char* kUsage = "bench_ops [--steps n] [--benchmark_...]";

void print_help() {
    std::printf(
        "bench_ops: latte::matmul beside direct cblas_sgemm calls on the same shapes, and the CPU's float32\n"
        "FMA peak (every core, no memory traffic): the ceiling above both. Then attention (forward and\n"
        "backward) with a learned per-head temperature: fused with a tensor scale, composed from ops, and\n"
        "fused with a plain number.\n"
        "  --steps N           timed steps per case (default %lld)\n"
        "Google Benchmark's flags:\n", (long long)bench::kDefaultSteps);
    benchmark::PrintDefaultHelp();
}

// Square 1024, a Linear-shaped 4096x512x512, and per-head batched attention shapes (B*H = 64).
void register_all(const bench::CommonFlags& flags) {
    bench::apply_steps(benchmark::RegisterBenchmark("fma_peak", BM_fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime(),
                       flags);
    using Fn = void (*)(benchmark::State&);
    const std::pair<const char*, Fn> cases[] = {{"latte_matmul", BM_latte_matmul}, {"cblas_sgemm", BM_cblas_sgemm}};
    for (const auto& [name, fn] : cases) {
        auto* b = benchmark::RegisterBenchmark(name, fn);
        b->Args({1, 1024, 1024, 1024})->Args({1, 4096, 512, 512})->Args({64, 128, 32, 128})->Args({64, 128, 128, 32});
        b->ArgNames({"batch", "m", "k", "n"})->Unit(benchmark::kMillisecond)->UseRealTime();
        bench::apply_steps(b, flags);
    }
    const std::pair<const char*, int> forms[] = {{"attention_temperature/fused_tensor_scale", 0},
                                                 {"attention_temperature/composed", 1},
                                                 {"attention_temperature/fused_number_scale", 2}};
    for (const auto& [name, form] : forms) {
        auto* b = benchmark::RegisterBenchmark(name, [form = form](benchmark::State& s) { attention_temperature(s, form); });
        bench::apply_steps(b->Unit(benchmark::kMillisecond)->UseRealTime(), flags);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const bench::CommonFlags flags = bench::take_common_flags("bench_ops", kUsage, argc, argv);
    bench::initialize(flags, argc, argv, print_help);
    register_all(flags);
    return bench::run_benchmarks(flags);
}
