// SIGINT / SIGTERM during training: the handler only records the signal; the training loop
// checks between steps, writes a checkpoint and stops (a handler cannot safely do any of that).
#pragma once
#include <csignal>

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

}  // namespace latte::experiments
