// bench_distributed: what data-parallel training costs, under mpirun (a process started alone is
// a world of one):
//   all_reduce/BYTES   osu-style: one float32 Sum all_reduce of BYTES per iteration; counters
//                      algbw (bytes / time) and busbw (algbw x 2(n-1)/n, what each link carries
//                      in a ring), as in nccl-tests.
//   train_medium_MODEL one DistributedDataParallel training step of bench_train's medium config
//                      (B 16, L 256, D 512, H 8, d 64, G 2, r 128): each rank runs B / ranks rows,
//                      and the step ends with every gradient averaged (25 MiB buckets; one more
//                      MHA case with 1 MiB buckets, whose all-reduces overlap backward).
// Every rank must run the same collectives, so iteration counts are fixed (all_reduce: 2000, 200
// or 20 by size; train: --steps, default 10), not chosen from --benchmark_min_time, and
// --benchmark_filter must be the same on every rank: the ranks compare it (and --steps) before any
// case runs, and a difference stops every rank with exit 2, naming each rank's value. An error
// after that (a rank that failed) stops every rank with exit 1. Rank 0 alone reports. Scaling: compare `mpirun -np 2 -x LATTE_NUM_THREADS=1 bench_distributed` with
// `mpirun -np 1 --bind-to none -x LATTE_NUM_THREADS=2 bench_distributed` (Open MPI binds a rank to
// one core unless told otherwise; README, Data-parallel training).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "core/distributed.h"
#include "core/factory.h"
#include "experiments/bench/bench_common.h"
#include "experiments/rank_agreement.h"
#include "experiments/teacher_student.h"
#include "nn/data_parallel.h"
#include "nn/optim.h"
#include "ops/loss.h"

namespace {

using namespace latte;
namespace dist = latte::distributed;

void BM_all_reduce(benchmark::State& state) {
    const int64_t bytes = state.range(0);
    Tensor t = ones({bytes / 4});
    for (int i = 0; i < 5; ++i) dist::all_reduce(t);  // connections set up, buffers touched
    dist::barrier();
    bench::StepTimes times;
    for (auto _ : state) times.time([&] { dist::all_reduce(t); });
    times.report(state);
    const double n = dist::world_size();
    state.counters["algbw"] = benchmark::Counter(double(bytes), benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1024);
    state.counters["busbw"] = benchmark::Counter(double(bytes) * 2 * (n - 1) / n,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1024);
    state.SetLabel(std::to_string(dist::world_size()) + " ranks");
}

void BM_train_medium(benchmark::State& state, const std::string& model, double bucket_cap_mb) {
    const int64_t B = 16, L = 256;
    Generator gen(0);
    auto module = experiments::make_student(model, {512, 8, 64, 2, 128}, gen);
    Tensor x = nn::shard_batch(randn({B, L, 512}, gen)), y = nn::shard_batch(randn({B, L, 512}, gen));
    Tensor target = nn::shard_batch(randn({B, L, 512}, gen));
    nn::Adam optimizer(module->parameters(), 1e-3);
    nn::DataParallelOptions options;
    options.bucket_cap_mb = bucket_cap_mb;
    nn::DistributedDataParallel ddp(*module, options);
    auto step = [&] {
        mse_loss(module->forward(x, y), target).backward();
        optimizer.step();
        optimizer.zero_grad();
    };
    for (int i = 0; i < 2; ++i) step();
    dist::barrier();
    bench::StepTimes times;
    for (auto _ : state) times.time(step);
    times.report(state);
    state.counters["tokens"] = benchmark::Counter(double(B * L), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["buckets"] = double(ddp.bucket_names().size());
    state.counters["buckets_early"] = double(ddp.buckets_started_early());
    state.SetLabel(std::to_string(dist::world_size()) + " ranks x " + std::to_string(B / dist::world_size()) +
                   " rows");
}

// Rank 0's reports only; the other ranks' go nowhere.
class SilentReporter : public benchmark::BenchmarkReporter {
public:
    bool ReportContext(const Context&) override { return true; }
    void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
    const bench::CommonFlags flags = bench::take_common_flags(
        "bench_distributed", "mpirun -np N bench_distributed [--steps n] [--benchmark_...]", argc, argv);
    bench::initialize(flags, argc, argv, benchmark::PrintDefaultHelp);  // exit 2 before joining MPI
    int code = 2;  // a refusal before any case runs (ranks that disagree) is a bad command line
    try {
        dist::init_process_group();
        // Every rank must run the same cases, each a fixed number of collectives: ranks started
        // with different cases would wait on each other's collectives, so they are refused first.
        experiments::check_ranks_agree({{"--benchmark_filter", flags.filter.empty() ? "(all)" : flags.filter},
                                        {"--steps", std::to_string(flags.steps)}},
                                       "bench_distributed");
        code = 1;  // from here, an error is a case that failed
        for (int64_t bytes = 4; bytes <= (int64_t{64} << 20); bytes *= 16) {
            const int64_t iterations = bytes <= (16 << 10) ? 2000 : bytes <= (1 << 20) ? 200 : 20;
            benchmark::RegisterBenchmark("all_reduce", BM_all_reduce)
                ->Arg(bytes)->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
        // The medium models' gradients (3-4 MiB) fit one default bucket; 1 MiB buckets overlap.
        for (const char* model : {"mha", "gqa", "mla"})
            benchmark::RegisterBenchmark((std::string("train_medium_") + model).c_str(), BM_train_medium, model, 25.0)
                ->Iterations(flags.steps)->UseRealTime()->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark("train_medium_mha_1MiB_buckets", BM_train_medium, "mha", 1.0)
            ->Iterations(flags.steps)->UseRealTime()->Unit(benchmark::kMillisecond);
        SilentReporter silent;
        int status = 0;
        if (dist::rank() == 0) status = bench::run_benchmarks(flags);
        else benchmark::RunSpecifiedBenchmarks(&silent);
        dist::destroy_process_group();
        return status;
    } catch (const Error& e) {
        // Every rank says why and exits alike (no std::terminate): the others hear of the failure
        // instead of waiting in a collective for this rank.
        std::string message = e.what();
        const std::string prefix = "bench_distributed: ";
        if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
        if (dist::world_size() > 1) {
            std::fprintf(stderr, "bench_distributed (rank %d): %s\n", dist::rank(), message.c_str());
            dist::report_failure(message);
        } else {
            std::fprintf(stderr, "bench_distributed: %s\n", message.c_str());
        }
        return code;
    }
}
