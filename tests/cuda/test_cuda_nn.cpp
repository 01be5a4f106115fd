// The modules, training, the absorbed path and decoding on CUDA, against the CPU.
#include <catch2/catch.hpp>

#include "experiments/inference.h"
#include "experiments/teacher_student.h"
#include "nn/absorbed.h"
#include "nn/chunked_attention.h"
#include "nn/conversion.h"
#include "nn/decode.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "tests/cuda/parity.h"

using namespace latte;
using test::kGpu;

namespace {

// The same module twice (same seed): one stays on the CPU, one moves to the GPU.
template <class M, class... Args>
std::pair<std::shared_ptr<M>, std::shared_ptr<M>> twins(Args... args) {
    Generator a(5), b(5);
    auto cpu = std::make_shared<M>(args..., a);
    auto gpu = std::make_shared<M>(args..., b);
    gpu->to(kGpu);
    return {cpu, gpu};
}

}  // namespace

TEST_CASE("MHA, GQA and MLA forward and backward on CUDA equal the CPU", "[cuda][nn]") {
    auto [mha_c, mha_g] = twins<nn::MultiHeadAttention>(32, 32, 8, 8, 4);
    auto [gqa_c, gqa_g] = twins<nn::GroupedQueryAttention>(32, 32, 8, 8, 4, 2);
    auto [mla_c, mla_g] = twins<nn::MultiHeadLatentAttention>(32, 4, 8, 12);
    const std::vector<std::tuple<const char*, nn::Attention*, nn::Attention*>> modules = {
        {"mha", mha_c.get(), mha_g.get()}, {"gqa", gqa_c.get(), gqa_g.get()}, {"mla", mla_c.get(), mla_g.get()}};
    Generator gen(6);
    Tensor x = randn({3, 10, 32}, gen, TensorOptions{}.with_requires_grad(true));
    Tensor y = randn({3, 14, 32}, gen, TensorOptions{}.with_requires_grad(true));
    for (const auto& [name, cpu, gpu] : modules) {
        for (bool causal : {false, true}) {
            CAPTURE(name, causal);
            cpu->zero_grad();
            gpu->zero_grad();
            const test::ParityResult r = test::parity(
                [cpu = cpu, gpu = gpu, causal = causal](const std::vector<Tensor>& v) {
                    return (v[0].device() == kGpu ? gpu : cpu)->forward(v[0], v[1], causal);
                },
                {x, y});
            CHECK(r.output_error < 1e-5);
            for (double e : r.gradient_errors) CHECK(e < 1e-5);
            const auto pc = cpu->parameters(), pg = gpu->parameters();
            REQUIRE(pc.size() == pg.size());
            for (size_t i = 0; i < pc.size(); ++i) {
                CAPTURE(i);
                CHECK(relative_error(to(pg[i].grad(), Device::cpu()), pc[i].grad()) < 1e-5);
            }
        }
    }
}

TEST_CASE("chunked attention on CUDA equals the CPU, forward and backward", "[cuda][nn]") {
    Generator gen(8);
    const TensorOptions grad = TensorOptions{}.with_requires_grad(true);
    Tensor q = randn({2, 4, 300, 16}, gen, grad), k = randn({2, 1, 310, 16}, gen, grad), v = randn({2, 1, 310, 8}, gen, grad);
    for (bool causal : {false, true}) {
        CAPTURE(causal);
        const test::ParityResult r = test::parity(
            [causal](const std::vector<Tensor>& t) { return nn::chunked_attention(t[0], t[1], t[2], 0.25, causal, 128); },
            {q, k, v});
        CHECK(r.output_error < 1e-5);
        REQUIRE(r.gradient_errors.size() == 3);
        for (double e : r.gradient_errors) CHECK(e < 1e-5);
    }
}

TEST_CASE("a short training run gives the same loss curve on both devices", "[cuda][nn]") {
    for (const char* kind : {"mha", "gqa", "mla"}) {
        CAPTURE(kind);
        experiments::TrainConfig c;
        c.model = kind;
        c.steps = 40;
        c.progress = false;
        auto cpu = experiments::train_teacher_student(c, *experiments::make_teacher(c.sizes, c.seed));
        c.device = kGpu;
        auto gpu = experiments::train_teacher_student(c, *experiments::make_teacher(c.sizes, c.seed, kGpu));
        REQUIRE(gpu.student->device() == kGpu);
        REQUIRE(gpu.losses.size() == cpu.losses.size());
        size_t bad = 0;  // one line for the curve, not one per step
        for (size_t i = 0; i < cpu.losses.size(); ++i)
            if (!(gpu.losses[i] == Approx(cpu.losses[i]).epsilon(1e-3))) {
                if (bad++ == 0) UNSCOPED_INFO("first differing step " << i << ": cpu " << cpu.losses[i] << ", gpu "
                                                                       << gpu.losses[i]);
            }
        CHECK(bad == 0);
        CHECK(gpu.eval_loss == Approx(cpu.eval_loss).epsilon(1e-3));
    }
}

TEST_CASE("the Part 13 check and the decode loop run on CUDA", "[cuda][nn]") {
    auto [cpu, gpu] = twins<nn::MultiHeadLatentAttention>(64, 4, 16, 24);
    Generator gen(7);
    Tensor x = randn({2, 9, 64}, gen), y = randn({2, 13, 64}, gen);
    Tensor gx = to(x, kGpu), gy = to(y, kGpu);
    for (auto form : {nn::AbsorbedForm::Precomputed, nn::AbsorbedForm::Factored}) {
        const Tensor absorbed = nn::AbsorbedLatentAttention(*gpu, form).forward(gx, gy, true);
        REQUIRE(absorbed.device() == kGpu);
        CHECK(relative_error(to(absorbed, Device::cpu()), cpu->forward(x, y, true)) < 1e-5);
    }
    {
        const experiments::DecodeReport r = experiments::run_decode(*gpu, 2, 16, 3, true);
        CHECK(r.relative_error < 1e-5);
        CHECK(r.numbers_per_position == 24);
    }
    auto [mha_cpu, mha_gpu] = twins<nn::MultiHeadAttention>(64, 64, 16, 16, 4);
    CHECK(experiments::run_decode(*mha_gpu, 2, 16, 3, true).relative_error < 1e-5);
    // GQA -> MLA for a module on the GPU: the SVD runs on the CPU, the MLA comes back to the GPU.
    auto [gqa_cpu, gqa_gpu] = twins<nn::GroupedQueryAttention>(64, 64, 16, 16, 4, 2);
    auto converted = nn::to_mla(*gqa_gpu);
    REQUIRE(converted->device() == kGpu);
    CHECK(relative_error(to(converted->forward(gx, gy), Device::cpu()), gqa_cpu->forward(x, y)) < 1e-5);
    CHECK(nn::to_gqa(*converted, 2)->device() == kGpu);
    experiments::AbsorbCase c;
    c.D = 256;
    c.H = 8;
    c.r = 40;
    c.B = 4;
    c.L1 = 20;
    c.L2 = 60;
    c.repeats = 1;
    c.device = kGpu;
    const experiments::AbsorbReport f64 = experiments::run_absorb_case(c, DType::Float64);
    CHECK(f64.error_precomputed < 1e-12);
    CHECK(f64.error_factored < 1e-12);
}
