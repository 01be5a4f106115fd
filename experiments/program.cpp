// The `latte` program: one binary, one subcommand per experiment.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "backends/common/caching_allocator.h"
#include "backends/cpu/parallel.h"
#include "core/distributed.h"
#include "experiments/cli.h"
#include "experiments/commands.h"

namespace latte::experiments {
namespace {

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: latte COMMAND [flags]   (latte COMMAND --help for its flags)\n\n"
                 "commands:\n"
                 "  demo      train MHA, GQA and MLA students on one teacher and compare them\n"
                 "  train     teacher-student regression for one model, with loss curve and weights\n"
                 "  forward   run a module from a .safetensors file (outputs and gradients)\n"
                 "  compare   GQA vs MLA at an equal KV-cache budget, over seeds\n"
                 "  convert   turn a trained GQA checkpoint into the equivalent MLA, checked\n"
                 "  absorb    the spec's Part 13: vanilla vs absorbed MLA, error and time\n"
                 "  decode    token-by-token decoding with a K/V or latent cache: sizes, tokens/s\n"
                 "  lm        a small decoder LM on synthetic token tasks: recall, copy, modadd, mqar\n"
                 "  info      the CPU, BLAS kernels, threads and CUDA devices latte uses\n");
}

}  // namespace

namespace {

// Under mpirun, `train` and `lm` train data-parallel and `info` describes each rank; the others
// would only repeat the same work on every rank.
bool runs_on_ranks(const char* cmd) {
    return !std::strcmp(cmd, "train") || !std::strcmp(cmd, "lm") || !std::strcmp(cmd, "info");
}

// Joins the MPI world when mpirun started this process; the ranks after 0 print nothing.
void join_ranks(const char* cmd, int argc, char** argv) {
    if (!distributed::launched_by_mpirun()) return;
    LATTE_CHECK(distributed::is_available(), "latte: started by mpirun, but this latte was built without MPI "
                "(install libopenmpi-dev and rebuild; see README, Data-parallel training)");
    distributed::init_process_group(cli::group_timeout(cmd, argc, argv, 2));
    LATTE_CHECK(distributed::world_size() == 1 || runs_on_ranks(cmd), "latte ", cmd, " does not run on several "
                "ranks (only train and lm do): run it without mpirun");
    if (distributed::rank() != 0 && !std::freopen("/dev/null", "w", stdout))
        LATTE_FAIL("latte: rank ", distributed::rank(), " cannot silence its output: ", std::strerror(errno));
}

int run_command(int argc, char** argv);

}  // namespace

int latte_main(int argc, char** argv) {
    try {
        // Starts the thread pool, which reads LATTE_NUM_THREADS: a bad value, or threads that cannot
        // start, is refused here, before a command prints or creates anything.
        cpu::num_threads();
        // LATTE_CUDA_CACHE_MB is read when a CUDA device starts, which most runs never do: a bad
        // value is refused here too, with the message CUDA would give, whatever the device.
        CachingAllocator::limit_from_env("LATTE_CUDA_CACHE_MB", 0);
        if (argc >= 2) join_ranks(argv[1], argc, argv);
        const int status = run_command(argc, argv);
        distributed::destroy_process_group();
        return status;
    } catch (const std::exception& e) {
        const bool named = std::strncmp(e.what(), "latte ", 6) == 0 || std::strncmp(e.what(), "latte: ", 7) == 0;
        if (distributed::world_size() > 1) {
            // The other ranks stop with this message instead of waiting for this rank.
            std::fprintf(stderr, "latte (rank %d): %s\n", distributed::rank(), e.what());
            distributed::report_failure(e.what());
        } else {
            std::fprintf(stderr, "%s%s\n", named ? "" : "latte: ", e.what());
        }
        return 1;
    }
}

namespace {

int run_command(int argc, char** argv) {
    {
        if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
            usage(stdout);
            return 0;
        }
        if (argc < 2) {
            std::fprintf(stderr, "latte: no command given\n");
            usage(stderr);
            return 2;
        }
        const char* cmd = argv[1];
        if (!std::strcmp(cmd, "demo")) return cmd_demo(argc, argv, 2);
        if (!std::strcmp(cmd, "train")) return cmd_train(argc, argv, 2);
        if (!std::strcmp(cmd, "forward")) return cmd_forward(argc, argv, 2);
        if (!std::strcmp(cmd, "compare")) return cmd_compare(argc, argv, 2);
        if (!std::strcmp(cmd, "convert")) return cmd_convert(argc, argv, 2);
        if (!std::strcmp(cmd, "absorb")) return cmd_absorb(argc, argv, 2);
        if (!std::strcmp(cmd, "decode")) return cmd_decode(argc, argv, 2);
        if (!std::strcmp(cmd, "info")) return cmd_info(argc, argv, 2);
        if (!std::strcmp(cmd, "lm")) return cmd_lm(argc, argv, 2);
        std::fprintf(stderr, "latte: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
}

}  // namespace

}  // namespace latte::experiments
