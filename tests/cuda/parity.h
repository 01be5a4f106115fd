// CPU-vs-CUDA parity: run the same function on both devices from the same inputs and compare
// outputs and every input gradient.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace latte::test {

inline const Device kGpu = Device::cuda(0);

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct ParityResult {
    double output_error = 0;               // relative_error(cuda, cpu)
    std::vector<double> gradient_errors;   // per input that requires grad
};

// Inputs are CPU leaves; copies go to the GPU as leaves with the same requires_grad. The
// backward seed is one random tensor shared by both devices.
inline ParityResult parity(const Fn& f, const std::vector<Tensor>& cpu_inputs, bool backward = true) {
    std::vector<Tensor> gpu_inputs;
    for (const Tensor& t : cpu_inputs) {
        Tensor g = to(t.detach(), kGpu);
        if (t.requires_grad()) g.requires_grad_(true);
        gpu_inputs.push_back(g);
    }
    for (Tensor t : cpu_inputs) t.zero_grad();  // a handle: clears the shared gradient
    Tensor out_cpu = f(cpu_inputs), out_gpu = f(gpu_inputs);
    REQUIRE(out_gpu.device() == kGpu);
    REQUIRE(out_gpu.shape() == out_cpu.shape());
    ParityResult result;
    result.output_error = relative_error(to(out_gpu, Device::cpu()), out_cpu);
    if (!backward || !out_cpu.requires_grad()) return result;
    Generator gen(99);
    Tensor seed = randn(out_cpu.shape(), gen, out_cpu.options());
    out_cpu.backward(seed);
    out_gpu.backward(to(seed, kGpu));
    for (size_t i = 0; i < cpu_inputs.size(); ++i) {
        if (!cpu_inputs[i].requires_grad()) continue;
        REQUIRE(gpu_inputs[i].grad().device() == kGpu);
        result.gradient_errors.push_back(relative_error(to(gpu_inputs[i].grad(), Device::cpu()), cpu_inputs[i].grad()));
    }
    return result;
}

// The output and every input gradient agree between the devices within `tol` (relative).
// CHECK, not REQUIRE: one run on a GPU should show every input that disagrees, not the first.
inline void require_parity(const Fn& f, const std::vector<Tensor>& inputs, double tol) {
    const ParityResult r = parity(f, inputs);
    CAPTURE(r.output_error);
    CHECK(r.output_error < tol);
    REQUIRE(!r.gradient_errors.empty());
    for (size_t i = 0; i < r.gradient_errors.size(); ++i) {
        CAPTURE(i, r.gradient_errors[i]);
        CHECK(r.gradient_errors[i] < tol);
    }
}

}  // namespace latte::test
