// One rank fails; the others must stop with its message instead of hanging. Run as
// `mpirun -np 2 latte_mpi_failure MODE`; rank 0 prints "PASS: ..." when it got the right error.
//   report:  rank 1 reports an error and exits; rank 0 is in an all_reduce rank 1 never joins.
//   timeout: rank 1 sleeps past the timeout; rank 0's barrier times out, and rank 1's next
//            collective fails with rank 0's message.
//   reinit:  a second init_process_group after destroy_process_group is a clear error (MPI
//            cannot start twice in one process), not an abort.
//   ddp_shift: rank 1 calls an all_reduce rank 0 does not, while rank 0's DDP averages three
//            buckets. The first bucket fails on both ranks; rank 0's later buckets must not pair
//            with rank 1's next backward (that summed unrelated gradients silently): they break
//            the group, so rank 1's next backward fails with rank 0's message, and rank 0's DDP
//            refuses its next backward.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "core/distributed.h"
#include "core/factory.h"
#include "nn/data_parallel.h"
#include "nn/module.h"
#include "ops/ops.h"

using namespace latte;
namespace dist = latte::distributed;

namespace {

// Three parameters of 3 float64 each; with a tiny bucket cap, one bucket each.
struct Three : nn::Module {
    Three() {
        for (const char* name : {"a", "b", "c"}) register_parameter(name, full({3}, 1.0, TensorOptions{}.with_dtype(DType::Float64)));
    }
    Tensor loss() const { return add(add(sum(param("a")), sum(param("b"))), sum(param("c"))); }
};

int expect_error(const char* who, const std::string& needle, void (*call)()) {
    try {
        call();
    } catch (const Error& e) {
        const bool ok = std::string(e.what()).find(needle) != std::string::npos;
        std::printf("%s: %s caught: %s\n", ok ? "PASS" : "FAIL", who, e.what());
        std::fflush(stdout);  // mpirun may kill this rank once another exits
        return ok ? 0 : 1;
    }
    std::printf("FAIL: %s got no error\n", who);
    std::fflush(stdout);
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
        // The message names the collective, the timeout and the rank that never came.
        const int result = expect_error("rank 0", "barrier (collective #1 of the process group) timed out after 2 s: "
                                        "rank 1 did not arrive", [] { dist::barrier(); });
        std::this_thread::sleep_for(std::chrono::seconds(4));  // mpirun stops rank 1 once rank 0 exits
        return result;
    }
    if (mode == "ddp_shift") {
        static Three model;
        nn::DataParallelOptions options;
        options.bucket_cap_mb = 1e-9;
        static nn::DistributedDataParallel ddp(model, options);
        if (dist::rank() == 1) {
            // Its own call fails either way: as the mismatch, or, when rank 0's notice arrives first,
            // as rank 0's failure.
            int result = expect_error("rank 1 (its odd all_reduce)", "all_reduce on rank 1: ", [] { dist::all_reduce(zeros({7})); });
            result |= expect_error("rank 1", "rank 0 failed", [] { model.loss().backward(); });
            return result;
        }
        int result = expect_error("rank 0 (first backward)", "different collectives", [] { model.loss().backward(); });
        result |= expect_error("rank 0", "an earlier backward stopped with an error", [] { model.loss().backward(); });
        std::this_thread::sleep_for(std::chrono::seconds(2));  // mpirun stops rank 1 once rank 0 exits
        return result;
    }
    std::printf("FAIL: unknown mode '%s' (report, timeout, reinit or ddp_shift)\n", mode.c_str());
    return 2;
}
