// NCCL between the ranks' GPUs (one per rank): collectives on CUDA memory, bootstrapped through
// the MPI world (rank 0's ncclUniqueId is broadcast over MPI). Each collective runs on NCCL's own
// stream once the compute stream reaches the point where its tensor was ready (an event), so
// communication overlaps the kernels queued after it. The communicator is non-blocking, so every
// wait polls, backing off to 1 ms sleeps: a deadline, a NCCL error or another rank's failure
// notice aborts it at once (ncclCommAbort) instead of hanging. Needs NCCL 2.14 or later (CMake
// checks). Has not yet run on a GPU (see docs/data-parallel.md).
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <memory>
#include <thread>

#include "core/distributed_transport.h"
#include "core/error.h"

namespace latte::distributed_detail {
namespace {

void check_cuda(cudaError_t rc, const char* what) {
    LATTE_CHECK(rc == cudaSuccess, what, " failed: ", cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(DType dtype) {
    switch (dtype) {
        case DType::Float32: return ncclFloat32;
        case DType::Float64: return ncclFloat64;
        case DType::Int64: return ncclInt64;
    }
    LATTE_FAIL("distributed: no NCCL type for dtype ", static_cast<int>(dtype));
}

class NcclTransport final : public Transport {
public:
    NcclTransport(World& world, int device, std::chrono::milliseconds timeout)
        : world_(world), device_(device), timeout_(timeout) {
        try {
            init();
        } catch (...) {
            aborted_ = true;  // the destructor does not run for a constructor that throws
            release();
            throw;
        }
    }
    ~NcclTransport() override { release(); }

    void abandon() override { abort_now(); }

    void after(const std::shared_ptr<void>& ready) override {
        check_cuda(cudaSetDevice(device_), "cudaSetDevice");
        if (ready) check_cuda(cudaStreamWaitEvent(stream_, static_cast<cudaEvent_t>(ready.get()), 0), "cudaStreamWaitEvent");
    }

    void all_reduce(void* data, DType dtype, int64_t count, bool average, Clock::time_point deadline) override {
        LATTE_CHECK(!average || dtype != DType::Int64, "distributed::all_reduce: Avg needs a floating dtype");
        check(ncclAllReduce(data, data, static_cast<size_t>(count), nccl_type(dtype), average ? ncclAvg : ncclSum,
                            comm_, stream_),
              "ncclAllReduce");
        wait_for_stream("all_reduce (NCCL)", deadline);
    }

    void broadcast(void* data, std::size_t bytes, int root, Clock::time_point deadline) override {
        check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
        wait_for_stream("broadcast (NCCL)", deadline);
    }

    void all_gather(const void* in, void* out, std::size_t bytes, Clock::time_point deadline) override {
        check(ncclAllGather(in, out, bytes, ncclUint8, comm_, stream_), "ncclAllGather");
        wait_for_stream("all_gather (NCCL)", deadline);
    }

private:
    void init() {
        const auto deadline = Clock::now() + timeout_;
        ncclUniqueId id{};  // the world's broadcast is a blocking call: done with `id` when it returns
        if (world_.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
        world_.broadcast(&id, sizeof id, 0, deadline);
        check_cuda(cudaSetDevice(device_), "cudaSetDevice");
        check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
        check_cuda(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;
        const ncclResult_t rc = ncclCommInitRankConfig(&comm_, world_.size(), id, world_.rank(), &config);
        LATTE_CHECK(rc == ncclSuccess || rc == ncclInProgress, "ncclCommInitRankConfig failed: ", ncclGetErrorString(rc));
        wait_for_comm("ncclCommInitRankConfig", deadline);
    }

    // No throwing: a healthy communicator is finalized (ncclCommFinalize, polled for at most 10 s:
    // it waits for the peers) and destroyed; a broken or failed one is aborted.
    // Aborts the communicator now, so a collective no peer will match frees its resources while
    // the CUDA runtime is still up (not at exit).
    void abort_now() noexcept {
        if (comm_) (void)ncclCommAbort(comm_);
        comm_ = nullptr;
        aborted_ = true;
    }

    void release() noexcept {
        if (comm_) {
            bool finalized = false;
            const ncclResult_t rc = aborted_ ? ncclInternalError : ncclCommFinalize(comm_);
            if (rc == ncclSuccess || rc == ncclInProgress) {
                const auto until = Clock::now() + std::chrono::seconds(10);
                ncclResult_t state = ncclInProgress;
                while (state == ncclInProgress && Clock::now() < until) {
                    ncclCommGetAsyncError(comm_, &state);
                    if (state == ncclInProgress) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
                finalized = state == ncclSuccess;
            }
            (void)(finalized ? ncclCommDestroy(comm_) : ncclCommAbort(comm_));
            comm_ = nullptr;
        }
        if (done_) (void)cudaEventDestroy(done_);
        if (stream_) (void)cudaStreamDestroy(stream_);
        done_ = nullptr;
        stream_ = nullptr;
    }

    // A non-blocking communicator may answer ncclInProgress: only other codes are errors.
    void check(ncclResult_t rc, const char* what) {
        if (rc == ncclSuccess || rc == ncclInProgress) return;
        abort_now();
        LATTE_FAIL(what, " failed: ", ncclGetErrorString(rc));
    }

    // One look at the communicator's errors, the deadline and failure notices, then a pause that
    // grows from a yield to 1 ms, so a long wait leaves the CPU to the caller's thread.
    void poll(const char* what, Clock::time_point deadline, int& round) {
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(comm_, &async);
        if (async != ncclSuccess && async != ncclInProgress) {
            const char* text = ncclGetErrorString(async);
            abort_now();
            LATTE_FAIL(what, " failed: ", text);
        }
        try {
            world_.check_interrupts(what, deadline);
        } catch (...) {
            abort_now();  // the communicator may hold a collective no peer will match
            throw;
        }
        if (round < 100) std::this_thread::yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000, 10 * (round - 99))));
        ++round;
    }

    void wait_for_comm(const char* what, Clock::time_point deadline) {
        for (int round = 0;; ) {
            LATTE_CHECK(comm_ != nullptr, what, ": the NCCL communicator was aborted after an earlier failure");
            ncclResult_t async = ncclInProgress;
            ncclCommGetAsyncError(comm_, &async);
            if (async == ncclSuccess) return;
            poll(what, deadline, round);
        }
    }

    void wait_for_stream(const char* what, Clock::time_point deadline) {
        wait_for_comm(what, deadline);  // the collective was enqueued
        check_cuda(cudaEventRecord(done_, stream_), "cudaEventRecord");
        for (int round = 0;; ) {
            const cudaError_t rc = cudaEventQuery(done_);
            if (rc == cudaSuccess) return;
            check_cuda(rc == cudaErrorNotReady ? cudaSuccess : rc, what);
            poll(what, deadline, round);
        }
    }

    World& world_;
    int device_;
    std::chrono::milliseconds timeout_;
    cudaStream_t stream_ = nullptr;
    cudaEvent_t done_ = nullptr;
    ncclComm_t comm_ = nullptr;
    bool aborted_ = false;
};

}  // namespace

bool nccl_compiled_in() { return true; }

std::unique_ptr<Transport> make_nccl_transport(World& world, int device, std::chrono::milliseconds timeout) {
    return std::make_unique<NcclTransport>(world, device, timeout);
}

}  // namespace latte::distributed_detail
