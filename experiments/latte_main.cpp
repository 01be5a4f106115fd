// The `latte` program. For now: `latte demo` fits a linear map with plain gradient descent.
#include <cstdio>
#include <cstring>
#include <string>

#include "ops/ops.h"

namespace {

int run_demo() {
    using namespace latte;
    Generator gen(0);
    const int64_t n = 256, d_in = 16, d_out = 4;
    Tensor true_w = randn({d_in, d_out}, gen);
    Tensor x = randn({n, d_in}, gen);
    Tensor y = matmul(x, true_w);
    Tensor w = zeros({d_in, d_out}, TensorOptions{}.with_requires_grad(true));
    const double lr = 0.1;
    for (int step = 0; step <= 100; ++step) {
        Tensor loss = mse_loss(matmul(x, w), y);
        loss.backward();
        if (step % 20 == 0) std::printf("step %3d  loss %.6f\n", step, loss.item());
        NoGradGuard no_grad;
        w = sub(w, mul(w.grad(), lr)).requires_grad_(true);
    }
    return 0;
}

void usage() { std::printf("usage: latte demo\n  demo   fit a linear map with gradient descent\n"); }

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc >= 2 && std::strcmp(argv[1], "demo") == 0) return run_demo();
        usage();
        return argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) ? 0 : 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "latte: %s\n", e.what());
        return 1;
    }
}
