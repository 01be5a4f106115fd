// One training step of MHA, GQA and MLA at the configs of ../shared/BENCHMARKS.md: forward,
// MSE against a fixed random target, backward, Adam (lr 1e-3), zero grads. Reports ms/step,
// tokens/s and peak bytes allocated during the step. Compare with scripts/bench_torch.py.
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "experiments/teacher_student.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/optim.h"
#include "ops/ops.h"

namespace {

using namespace latte;

struct Config {
    const char* name;
    int64_t B, L, D, H, d, G, r;
};
const Config kConfigs[] = {{"small", 8, 128, 256, 8, 32, 2, 64}, {"medium", 16, 256, 512, 8, 64, 2, 128}};

void BM_train_step(benchmark::State& state, Config c, const char* model) {
    Generator gen(0);
    auto module = experiments::make_student(model, {c.D, c.H, c.d, c.G, c.r}, gen);
    Tensor x = randn({c.B, c.L, c.D}, gen), y = randn({c.B, c.L, c.D}, gen), target = randn({c.B, c.L, c.D}, gen);
    nn::Adam optimizer(module->parameters(), 1e-3);
    auto step = [&] {
        Tensor loss = mse_loss(module->forward(x, y), target);
        loss.backward();
        optimizer.step();
        optimizer.zero_grad();
    };
    for (int i = 0; i < 3; ++i) step();  // warm-up (Adam state allocated)
    const int64_t base = memory_stats().live_bytes;
    reset_peak_memory();
    for (auto _ : state) step();
    state.counters["peak_MiB"] = double(memory_stats().peak_bytes - base) / (1 << 20);
    state.counters["tokens/s"] = benchmark::Counter(double(c.B * c.L), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
    for (const Config& c : kConfigs)
        for (const char* model : {"mha", "gqa", "mla"})
            benchmark::RegisterBenchmark((std::string("train_") + model + "_" + c.name).c_str(), BM_train_step, c, model)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->MinTime(2.0);
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
