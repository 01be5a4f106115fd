#include "experiments/progress.h"

#include <algorithm>

namespace latte::experiments {

Progress::Progress(int64_t first, int64_t last, int64_t every, double seconds)
    : first_(first), last_(last), every_(every), seconds_(seconds), start_(std::chrono::steady_clock::now()) {}

Progress::Tick Progress::after(int64_t step) {
    return after(step, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
}

Progress::Tick Progress::after(int64_t step, double now) {
    Tick tick;
    const bool counted = every_ > 0 && (step % every_ == 0 || step == last_);
    tick.print = counted || now - printed_at_ >= seconds_;
    if (!tick.print) return tick;
    printed_at_ = now;
    tick.steps_per_second = double(step - first_) / std::max(now, 1e-9);
    tick.eta_seconds = double(last_ - step) / std::max(tick.steps_per_second, 1e-9);
    return tick;
}

}  // namespace latte::experiments
