#include "experiments/stop_signal.h"

namespace latte::experiments {
namespace {

volatile std::sig_atomic_t requested = 0;

void on_signal(int signal) { request_stop(signal); }

}  // namespace

void request_stop(int signal) { requested = signal; }
int stop_requested() { return requested; }
void clear_stop_request() { requested = 0; }

StopSignalGuard::StopSignalGuard() {
    clear_stop_request();
    struct sigaction action {};
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;  // a signal during a file write must not fail it
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
}

StopSignalGuard::~StopSignalGuard() {
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
}

}  // namespace latte::experiments
