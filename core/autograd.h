// Grad mode and the backward engine.
#pragma once
#include "tensor.h"

namespace latte {

bool grad_mode_enabled();

// While alive, ops record no graph on this thread (like torch.no_grad()).
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// Runs reverse-mode differentiation from `root` seeded with `grad` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace latte
