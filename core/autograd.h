// Grad mode and the backward engine.
#pragma once
#include <functional>

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

// Anomaly mode (like torch.autograd.set_detect_anomaly): while on, backward checks every
// gradient each node produces and throws a latte::Error naming the first node whose backward
// turned a finite gradient into NaN or Inf, its input and the element. Slow: for debugging.
void set_detect_anomaly(bool on);
bool detect_anomaly_enabled();
class DetectAnomalyGuard {
public:
    explicit DetectAnomalyGuard(bool on = true);
    ~DetectAnomalyGuard();
    DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
    DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

private:
    bool previous_;
};

// Runs reverse-mode differentiation from `root` seeded with `grad` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

// From inside a hook that a backward calls: runs `fn` once that backward has finished (like
// PyTorch's engine queue_callback). DistributedDataParallel waits for its all-reduces there.
// Throws when no backward is running on this thread.
void queue_backward_callback(std::function<void()> fn);
// A number that identifies the backward running on this thread (a new one for every backward),
// 0 when none runs: lets a hook tell one backward from the next, even after one that threw.
uint64_t running_backward_id();

}  // namespace latte
