// Matmul throughput: latte::matmul beside a direct cblas_sgemm on the same shapes, in one run.
// Both go through the OpenBLAS that latte loaded, so both run the same kernels.
#include <benchmark/benchmark.h>

#include <thread>

#include "backends/cpu/blas.h"
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
    for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).view().data);
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
    for (auto _ : state) {
        for (int64_t i = 0; i < batch; ++i)
            cpu::direct_sgemm(threads, m, n, k, a.data() + i * m * k, b.data() + i * k * n, c.data() + i * m * n);
        benchmark::DoNotOptimize(c.data());
    }
    set_flops(state, 2.0 * batch * m * n * k);
}

// Square 1024, a Linear-shaped 4096x512x512, and per-head batched attention shapes (B*H = 64).
void shapes(benchmark::internal::Benchmark* b) {
    b->Args({1, 1024, 1024, 1024})->Args({1, 4096, 512, 512})->Args({64, 128, 32, 128})->Args({64, 128, 128, 32});
    b->ArgNames({"batch", "m", "k", "n"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_latte_matmul)->Apply(shapes);
BENCHMARK(BM_cblas_sgemm)->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
