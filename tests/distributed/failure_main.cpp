// One rank fails; the others must stop with its message instead of hanging. Run as
// `mpirun -np 2 latte_mpi_failure MODE`; rank 0 prints "PASS: ..." when it got the right error.
//   report:  rank 1 reports an error and exits; rank 0 is in an all_reduce rank 1 never joins.
//   timeout: rank 1 sleeps past the timeout; rank 0's barrier times out, and rank 1's next
//            collective fails with rank 0's message.
//   reinit:  a second init_process_group after destroy_process_group is a clear error (MPI
//            cannot start twice in one process), not an abort.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "core/distributed.h"
#include "core/factory.h"

using namespace latte;
namespace dist = latte::distributed;

namespace {

int expect_error(const char* who, const std::string& needle, void (*call)()) {
    try {
        call();
    } catch (const Error& e) {
        const bool ok = std::string(e.what()).find(needle) != std::string::npos;
        std::printf("%s: %s caught: %s\n", ok ? "PASS" : "FAIL", who, e.what());
        return ok ? 0 : 1;
    }
    std::printf("FAIL: %s got no error\n", who);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    dist::init_process_group(std::chrono::seconds(mode == "timeout" ? 2 : 60));
    if (mode == "reinit") {
        const std::string who = "rank " + std::to_string(dist::rank());
        dist::destroy_process_group();
        return expect_error(who.c_str(), "MPI was already finalized",
                            [] { dist::init_process_group(); });
    }
    if (dist::world_size() != 2) {
        std::printf("FAIL: needs exactly 2 ranks\n");
        return 1;
    }
    if (mode == "report") {
        if (dist::rank() == 1) {
            dist::report_failure("injected failure on rank 1");
            return 3;
        }
        return expect_error("rank 0", "rank 1 failed: injected failure on rank 1", [] { dist::all_reduce(zeros({8})); });
    }
    if (mode == "timeout") {
        if (dist::rank() == 1) {
            std::this_thread::sleep_for(std::chrono::seconds(4));
            return expect_error("rank 1", "rank 0 failed: barrier on rank 0", [] { dist::barrier(); });
        }
        const int result = expect_error("rank 0", "timed out", [] { dist::barrier(); });
        std::this_thread::sleep_for(std::chrono::seconds(4));  // mpirun stops rank 1 once rank 0 exits
        return result;
    }
    std::printf("FAIL: unknown mode '%s' (report or timeout)\n", mode.c_str());
    return 2;
}
