// A complete experiment to copy and edit: does a GQA student with fewer K/V heads fit an MHA
// teacher as well as one with more? Config, data, model, optimizer, loop, summary.
#include <cstdio>

#include "core/autograd.h"
#include "nn/gqa.h"
#include "nn/mha.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace latte;

int main() {
    // Config
    const int64_t D = 32, H = 4, d = 8, B = 8, L = 12, steps = 400;
    const double lr = 3e-3;

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
