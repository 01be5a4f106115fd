#include "experiments/teacher_student.h"

#include <chrono>
#include <cstdio>

#include "core/autograd.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/mla.h"
#include "nn/optim.h"
#include "ops/ops.h"

namespace latte::experiments {

std::shared_ptr<nn::Attention> make_student(const std::string& kind, const ModelSizes& s, Generator& gen) {
    if (kind == "mha") return std::make_shared<nn::MultiHeadAttention>(s.D, s.D, s.d, s.d, s.H, gen);
    if (kind == "gqa") return std::make_shared<nn::GroupedQueryAttention>(s.D, s.D, s.d, s.d, s.H, s.G, gen);
    if (kind == "mla") return std::make_shared<nn::MultiHeadLatentAttention>(s.D, s.H, s.d, s.r, gen);
    LATTE_FAIL("unknown model '", kind, "' (expected mha, gqa or mla)");
}

std::shared_ptr<nn::Attention> make_teacher(const ModelSizes& s, uint64_t seed, Device device) {
    Generator gen(seed ^ 0x7eac4e7ull);
    auto teacher = std::make_shared<nn::MultiHeadAttention>(s.D, s.D, s.d, s.d, s.H, gen);
    // PyTorch's init gives outputs ~ 1/sqrt(3) smaller per layer; scale so the attention pattern is
    // not uniform and the targets are of order one.
    NoGradGuard no_grad;
    for (const Tensor& p : teacher->parameters()) copy_(p, mul(p, 2.0));
    teacher->to(device);
    return teacher;
}

TrainResult train_teacher_student(const TrainConfig& c, const nn::Attention& teacher) {
    LATTE_CHECK(c.steps > 0 && c.batch > 0 && c.L1 > 0 && c.L2 > 0, "train: steps, batch and lengths must be positive");
    Generator init(c.seed), data(c.seed + 1000003);
    TrainResult result;
    result.student = make_student(c.model, c.sizes, init);
    result.student->to(c.device);
    LATTE_CHECK(teacher.device() == c.device, "train: the teacher is on ", teacher.device().str(),
                ", the student trains on ", c.device.str());
    result.parameters = result.student->num_parameters();
    result.kv_cache_per_position = result.student->kv_cache_per_position();
    nn::Adam optimizer(result.student->parameters(), c.lr);
    const Shape xs{c.batch, c.L1, c.sizes.D}, ys{c.batch, c.L2, c.sizes.D};

    const auto start = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < c.steps; ++step) {
        const TensorOptions on_device = TensorOptions{}.with_device(c.device);
        Tensor x = randn(xs, data, on_device), y = randn(ys, data, on_device);  // a fresh batch every step
        Tensor target;
        {
            NoGradGuard no_grad;
            target = teacher(x, y);
        }
        Tensor loss = mse_loss(result.student->forward(x, y), target);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        result.losses.push_back(loss.item());
        if (c.progress && ((step + 1) % c.report_every == 0 || step + 1 == c.steps)) {
            const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const double rate = double(step + 1) / elapsed;
            std::printf("  %s step %5lld/%lld  loss %.3e  %6.1f steps/s  ETA %5.1fs\n", c.model.c_str(),
                        static_cast<long long>(step + 1), static_cast<long long>(c.steps), result.losses.back(), rate,
                        double(c.steps - step - 1) / rate);
            std::fflush(stdout);
        }
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    Generator held_out(c.seed + 7777777);
    NoGradGuard no_grad;
    const TensorOptions on_device = TensorOptions{}.with_device(c.device);
    Tensor x = randn({4 * c.batch, c.L1, c.sizes.D}, held_out, on_device);
    Tensor y = randn({4 * c.batch, c.L2, c.sizes.D}, held_out, on_device);
    Tensor target = teacher(x, y);
    result.eval_loss = mse_loss(result.student->forward(x, y), target).item();
    result.target_power = mean(mul(target, target)).item();
    return result;
}

}  // namespace latte::experiments
