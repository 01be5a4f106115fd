// The interface core/distributed.cpp drives, implemented by backends/mpi (the world: host
// memory, failure notices) and backends/nccl (CUDA memory). Calls come only from the
// communication thread, one at a time, and each blocks until its collective finished. Waits that
// poll (the agreement check, every NCCL call) throw latte::Error on an MPI/NCCL error, a
// failure notice from another rank, or `deadline`; the MPI data collectives run after a passed
// agreement check, as plain blocking calls.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dtype.h"

namespace latte::distributed_detail {

using Clock = std::chrono::steady_clock;

// "300 s", "0.5 s": a timeout as messages give it.
inline std::string seconds(std::chrono::milliseconds ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%g s", static_cast<double>(ms.count()) / 1000);
    return text;
}

// Raised inside a transport when another rank reported a failure.
struct PeerFailure {
    std::string message;
};

// Raised by World::exchange when its deadline passed before every rank's values arrived: the
// ranks whose values are missing, in order.
struct Absent {
    std::vector<int> ranks;
};

class Transport {
public:
    virtual ~Transport() = default;
    // Sum over ranks in place, divided by the world size when `average` (floating dtypes).
    virtual void all_reduce(void* data, DType dtype, int64_t count, bool average, Clock::time_point deadline) = 0;
    virtual void broadcast(void* data, std::size_t bytes, int root, Clock::time_point deadline) = 0;
    // out holds world-size blocks of `bytes`, in rank order.
    virtual void all_gather(const void* in, void* out, std::size_t bytes, Clock::time_point deadline) = 0;
    // The next collective starts after `ready` (Backend::record_marker of the tensor's device, taken
    // when the caller submitted it; null: nothing to wait for).
    virtual void after(const std::shared_ptr<void>& ready) { (void)ready; }
    // The group broke: at destruction, abort rather than wait for peers that may never come.
    virtual void abandon() {}
};

// The MPI world every process group has: it also carries the ranks' agreement checks and the
// failure notices.
class World : public Transport {
public:
    virtual int rank() const = 0;
    virtual int size() const = 0;
    virtual int local_rank() const = 0;  // among the ranks on this machine
    // Every rank's `count` values, in rank order (all[r * count + i]), sent point to point so
    // that a wait that gives up at `deadline` knows which ranks never sent theirs (Absent).
    virtual void exchange(const int64_t* mine, int count, int64_t* all, Clock::time_point deadline) = 0;
    // Throws PeerFailure when another rank's failure notice has arrived (acknowledging it), and
    // latte::Error when this rank is failing (report_failure) or `deadline` passed. Every wait
    // loop, NCCL's included, calls it while it polls.
    virtual void check_interrupts(const char* op, Clock::time_point deadline) = 0;
    // Sends `message` to every other rank and waits until `deadline` for their acknowledgements.
    virtual void notify_failure(const std::string& message, Clock::time_point deadline) = 0;
    // MPI_Finalize; only when no collective is pending.
    virtual void finalize() = 0;
};

// backends/mpi/mpi_world.cpp (or the stub of a build without MPI, which throws). While
// `interrupt` is set, waits give up (check_interrupts). `timeout` is the group's, for messages.
std::unique_ptr<World> make_mpi_world(const std::atomic<bool>& interrupt, std::chrono::milliseconds timeout);
bool mpi_compiled_in();
// backends/nccl/nccl_transport.cpp: a NCCL communicator over all ranks for CUDA device `device`,
// bootstrapped through `world` (or the stub, which throws, in a build without NCCL).
// Its initialisation must finish within `timeout`, the group's.
std::unique_ptr<Transport> make_nccl_transport(World& world, int device, std::chrono::milliseconds timeout);
bool nccl_compiled_in();

}  // namespace latte::distributed_detail
