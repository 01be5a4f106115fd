// DistributedDataParallel, like PyTorch's: one model replica per rank (process), each fed its own
// shard of every batch; gradients are averaged over the ranks during backward, so every rank's
// optimizer takes the same step and the replicas stay equal.
//
//   distributed::init_process_group();              // in a program started by mpirun -np N
//   nn::DistributedDataParallel ddp(model);         // broadcasts rank 0's parameters
//   Tensor loss = mse_loss(model(shard_batch(x)), shard_batch(target));
//   loss.backward();                                // all-reduces gradient buckets as they fill
//   optimizer.step();
//
// Gradients are averaged in buckets of about `bucket_cap_mb` MiB, filled in reverse parameter
// order (the order backward produces them). A bucket's all-reduce starts as soon as its last
// gradient is accumulated, on the communication thread, so it overlaps the rest of backward;
// buckets start in the same order on every rank. The backward returns once all are averaged.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../core/distributed.h"
#include "module.h"

namespace latte::nn {

struct DataParallelOptions {
    double bucket_cap_mb = 25;         // MiB of gradients per all-reduce
    bool broadcast_parameters = true;  // start from rank 0's parameters
};

class DistributedDataParallel {
public:
    // Checks that every rank has the same parameters (names' count, shapes, dtypes), then
    // broadcasts rank 0's values. Needs an initialized process group. The module must outlive
    // this object, and its parameters must not be replaced while it lives.
    explicit DistributedDataParallel(Module& module, DataParallelOptions options = {});
    ~DistributedDataParallel();
    DistributedDataParallel(const DistributedDataParallel&) = delete;
    DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

    Module& module() const;

    // While a NoSync lives, backward only accumulates gradients locally (gradient accumulation);
    // the first backward after it averages the accumulated sums, like PyTorch's no_sync().
    class NoSync {
    public:
        explicit NoSync(DistributedDataParallel& ddp);
        ~NoSync();
        NoSync(const NoSync&) = delete;
        NoSync& operator=(const NoSync&) = delete;

    private:
        DistributedDataParallel& ddp_;
    };
    NoSync no_sync() { return NoSync(*this); }

    // The parameter names of each bucket, in the order the buckets are all-reduced.
    std::vector<std::vector<std::string>> bucket_names() const;
    // Of the last synchronised backward: buckets whose all-reduce started while backward still
    // had gradients to compute, i.e. overlapped the computation (0 with a single bucket).
    int64_t buckets_started_early() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// This rank's shard of a batch: rows [rank * n / size, (rank + 1) * n / size) of dim 0, where the
// batch size n must be a multiple of the world size (so the averaged gradient equals the whole
// batch's). The whole batch when the process group is not initialized.
Tensor shard_batch(const Tensor& batch);

}  // namespace latte::nn
