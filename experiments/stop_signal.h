// SIGINT / SIGTERM during training: the handler only records the signal; the training loop
// checks between steps, writes a checkpoint and stops (a handler cannot safely do any of that).
#pragma once
#include <csignal>
#include <vector>

namespace latte::experiments {

// While alive, SIGINT and SIGTERM call request_stop instead of ending the process; the previous
// handlers come back on destruction. Clears any earlier request when constructed.
class StopSignalGuard {
public:
    StopSignalGuard();
    ~StopSignalGuard();
    StopSignalGuard(const StopSignalGuard&) = delete;
    StopSignalGuard& operator=(const StopSignalGuard&) = delete;

private:
    struct sigaction previous_int_ {}, previous_term_ {};
};

void request_stop(int signal);  // what the handler does; async-signal-safe
int stop_requested();           // the signal that asked to stop, or 0
void clear_stop_request();

// Under mpirun, once per training step: sums `values` (this rank's numbers of the step, e.g. its
// loss) over the ranks in place, in the same all-reduce that shares which signal each rank caught
// (`mine`: its stop_requested(), or 0), and returns the signal every rank then stops for (SIGTERM
// if any rank caught it, else SIGINT if any did, else 0), so that all ranks stop after the same step.
int sum_over_ranks_and_agree_on_stop(std::vector<double>& values, int mine);

}  // namespace latte::experiments
