// When a training loop prints a progress line: every `every` steps, and also whenever `seconds`
// of wall time have passed since the last line, so that a slow run is never silent for long.
#pragma once
#include <chrono>
#include <cstdint>

namespace latte::experiments {

class Progress {
public:
    struct Tick {
        bool print = false;
        double steps_per_second = 0, eta_seconds = 0;  // this run's rate so far, and the time left at it
    };
    // A run from step `first` (the steps done before it, e.g. from a checkpoint) to `last`.
    // every: a line each `every` steps and at the last step (0: by time alone).
    Progress(int64_t first, int64_t last, int64_t every, double seconds = 10);
    // After step `step` (1-based) is done; `now` is seconds since construction (the clock's if omitted).
    Tick after(int64_t step, double now);
    Tick after(int64_t step);

private:
    int64_t first_, last_, every_;
    double seconds_, printed_at_ = 0;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace latte::experiments
