#include "experiments/stop_signal.h"

#include "core/distributed.h"
#include "core/factory.h"

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

int sum_over_ranks_and_agree_on_stop(std::vector<double>& values, int mine) {
    std::vector<double> shared = values;
    shared.push_back(mine == SIGTERM ? 1.0 : 0.0);
    shared.push_back(mine == SIGINT ? 1.0 : 0.0);
    Tensor t = from_vector(shared, {int64_t(shared.size())}, TensorOptions{}.with_dtype(DType::Float64));
    distributed::all_reduce(t);
    const std::vector<double> sums = t.to_vector<double>();
    std::copy(sums.begin(), sums.begin() + std::ptrdiff_t(values.size()), values.begin());
    const double terms = sums[values.size()], ints = sums[values.size() + 1];
    return terms > 0 ? SIGTERM : ints > 0 ? SIGINT : 0;
}

}  // namespace latte::experiments
