// Collective communication between processes, like torch.distributed: a process group over MPI
// (launched with mpirun; one process per rank) that carries CPU tensors, with NCCL carrying CUDA
// tensors. latte builds no transport of its own.
//
// Every collective runs on one communication thread per process, in the order it was called, so
// an asynchronous all_reduce overlaps the caller's computation. Before each collective the ranks
// check that they called the same one (op, dtype, element count, root): a mismatch is a
// latte::Error on every rank instead of a hang or a wrong sum. A collective that does not finish
// within the group's timeout, or an MPI/NCCL error, is a latte::Error too. After any failure the
// group is broken: the other ranks are told (their pending and later collectives throw with the
// failing rank's message), and every later call throws.
#pragma once
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tensor.h"

namespace latte::distributed {

enum class ReduceOp { Sum, Avg };  // Avg: the sum divided by the world size (floating dtypes only)

// True when latte was built with MPI (LATTE_MPI), so init_process_group can work.
bool is_available();
// True when this process was started by mpirun/srun (their environment variables are set).
bool launched_by_mpirun();

// Joins the MPI world of the processes mpirun started (a process started alone is a world of
// one). `timeout` bounds every later collective. Throws if latte was built without MPI, or if
// the group is already initialized.
void init_process_group(std::chrono::milliseconds timeout = std::chrono::minutes(5));
bool is_initialized();
// Waits for queued collectives, then leaves MPI (MPI_Finalize; skipped when the group is
// broken, since a peer may never match a pending call). Called at exit if the user did not.
void destroy_process_group();
int rank();        // 0 when not initialized
int world_size();  // 1 when not initialized
// This rank's index among the ranks on its machine (0 when not initialized): with one GPU per
// rank, the GPU it should use is cuda:(local_rank() % device count).
int local_rank();

// The handle of an asynchronous collective. wait() blocks until it finished and throws its
// latte::Error if it failed; the tensor must not be read or written until then.
class Work {
public:
    struct State;
    Work() = default;
    explicit Work(std::shared_ptr<State> state) : state_(std::move(state)) {}
    void wait() const;
    bool is_completed() const;

private:
    std::shared_ptr<State> state_;
};

// In place on every rank: t becomes the sum (or average) of all ranks' t. Contiguous tensors of
// any dtype; CPU tensors go over MPI, CUDA tensors over NCCL.
void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::Sum);
Work all_reduce_async(const Tensor& t, ReduceOp op = ReduceOp::Sum);
// Collectives that stand or fall together, such as DistributedDataParallel's gradient buckets of
// one backward. Once one of them fails (say, the ranks called different collectives), the later
// ones fail without communicating and break the group, telling the other ranks: this rank's calls
// no longer line up with theirs, and going on would pair a bucket with an unrelated collective.
struct Chain {
    std::shared_ptr<std::atomic<bool>> failed = std::make_shared<std::atomic<bool>>(false);
};
Work all_reduce_async(const Tensor& t, ReduceOp op, const Chain& chain);
// In place: every rank's t becomes rank `root`'s.
void broadcast(const Tensor& t, int root = 0);
Work broadcast_async(const Tensor& t, int root = 0);
// Every rank's t (same shape, dtype and device on all ranks), indexed by rank.
std::vector<Tensor> all_gather(const Tensor& t);
void barrier();

// Throws latte::Error naming `what` unless every rank passed the same values (e.g. a hash of a
// model's parameter shapes).
void check_same_on_all_ranks(const std::vector<int64_t>& values, const std::string& what);

// For a rank that is about to exit on an error: tells every other rank (their collectives then
// throw "rank R failed: message" instead of hanging), waiting a few seconds at most for them to
// hear it. The group is broken afterwards. Does nothing when the group is not initialized.
void report_failure(const std::string& message);

}  // namespace latte::distributed
