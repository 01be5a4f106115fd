// One training step of MHA, GQA and MLA at the configs of ../shared/BENCHMARKS.md: forward,
// MSE against a fixed random target, backward, Adam (lr 1e-3), zero grads. Reports ms/step,
// tokens/s and peak bytes allocated during the step. Compare with scripts/bench_torch.py.
// With a usable GPU the same steps also run on cuda:0 (configs small, medium and large; each
// step ends with a synchronize, so the wall time covers the GPU work).
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "core/cuda.h"
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
const Config kCpuConfigs[] = {{"small", 8, 128, 256, 8, 32, 2, 64}, {"medium", 16, 256, 512, 8, 64, 2, 128}};
const Config kGpuConfigs[] = {{"small", 8, 128, 256, 8, 32, 2, 64},
                              {"medium", 16, 256, 512, 8, 64, 2, 128},
                              {"large", 16, 1024, 1024, 16, 64, 4, 256}};

void BM_train_step(benchmark::State& state, Config c, const char* model, Device device) {
    Generator gen(0);
    auto module = experiments::make_student(model, {c.D, c.H, c.d, c.G, c.r}, gen);
    module->to(device);
    const TensorOptions on_device = TensorOptions{}.with_device(device);
    Tensor x = randn({c.B, c.L, c.D}, gen, on_device), y = randn({c.B, c.L, c.D}, gen, on_device);
    Tensor target = randn({c.B, c.L, c.D}, gen, on_device);
    nn::Adam optimizer(module->parameters(), 1e-3);
    Backend& backend = backend_for(device);
    auto step = [&] {
        Tensor loss = mse_loss(module->forward(x, y), target);
        loss.backward();
        optimizer.step();
        optimizer.zero_grad();
        backend.synchronize();
    };
    for (int i = 0; i < 3; ++i) step();  // warm-up (Adam state allocated, allocator cache filled)
    const int64_t base = memory_stats(device).live_bytes;
    reset_peak_memory(device);
    for (auto _ : state) step();
    const MemoryStats stats = memory_stats(device);
    state.counters["peak_MiB"] = double(stats.peak_bytes - base) / (1 << 20);
    state.counters["peak_total_MiB"] = double(stats.peak_bytes) / (1 << 20);  // with weights, like max_memory_allocated
    state.counters["tokens/s"] = benchmark::Counter(double(c.B * c.L), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
    auto add = [](const Config& c, const char* model, Device device) {
        const std::string name = std::string("train_") + model + "_" + c.name + (device.is_cpu() ? "" : "_cuda");
        benchmark::RegisterBenchmark(name.c_str(), BM_train_step, c, model, device)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(device.is_cpu() ? 2.0 : 1.0);
    };
    for (const Config& c : kCpuConfigs)
        for (const char* model : {"mha", "gqa", "mla"}) add(c, model, Device::cpu());
    if (cuda::is_available())
        for (const Config& c : kGpuConfigs)
            for (const char* model : {"mha", "gqa", "mla"}) add(c, model, Device::cuda(0));
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
