// A complete experiment to copy and edit: does a GQA student with fewer K/V heads fit an MHA
// teacher as well as one with more? Config, gradient check, data, model, optimizer, loop, summary.
#include <cstdio>

#include <latte/latte.h>  // or single headers: <latte/nn/gqa.h>, <latte/ops/ops.h>, ...

using namespace latte;

int main() {
    // Config
    const int64_t D = 32, H = 4, d = 8, B = 8, L = 12, steps = 400;
    const double lr = 3e-3;

    // Gradient check first: a small float64 copy of the student's architecture and loss
    // (worth keeping when you change the model: a wrong gradient trains, only worse).
    {
        Generator check_gen(7);
        nn::GroupedQueryAttention small(8, 8, 2, 2, 4, 2, check_gen, DType::Float64);
        const TensorOptions f64 = TensorOptions{}.with_dtype(DType::Float64);
        const Tensor x = randn({2, 3, 8}, check_gen, f64), y = randn({2, 5, 8}, check_gen, f64),
                     target = randn({2, 3, 8}, check_gen, f64);
        const GradcheckResult check = nn::gradcheck_module(
            small, [&](nn::GroupedQueryAttention& m) { return mse_loss(m(x, y), target); });
        std::printf("%s\n", check.message.c_str());  // on failure: parameter, index, analytic vs numeric
        if (!check.ok) return 1;
    }

    // Data: a fixed random teacher makes targets from random inputs.
    Generator gen(42);
    nn::MultiHeadAttention teacher(D, D, d, d, H, gen);

    for (int64_t G : {1, 2, 4}) {
        // Model and optimizer
        nn::GroupedQueryAttention student(D, D, d, d, H, G, gen);
        nn::Adam optimizer(student.parameters(), lr);

        // Loop
        double loss_value = 0;
        for (int64_t step = 0; step < steps; ++step) {
            Tensor x = randn({B, L, D}, gen), y = randn({B, L, D}, gen);
            Tensor target;
            {
                NoGradGuard no_grad;
                target = teacher(x, y);
            }
            Tensor loss = mse_loss(student(x, y), target);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            loss_value = loss.item();
        }

        // Summary
        std::printf("GQA G=%lld: final loss %.3e, KV cache %lld numbers/position\n", static_cast<long long>(G),
                    loss_value, static_cast<long long>(student.kv_cache_per_position()));
    }
    return 0;
}
