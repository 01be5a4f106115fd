#include "core/distributed.h"

#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "core/backend.h"
#include "core/distributed_transport.h"
#include "core/storage.h"

namespace latte::distributed {

struct Work::State {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    std::string error;  // empty on success
};

void Work::wait() const {
    LATTE_CHECK(state_ != nullptr, "distributed::Work::wait: this Work was default-constructed");
    std::unique_lock lock(state_->mutex);
    state_->done_cv.wait(lock, [&] { return state_->done; });
    if (!state_->error.empty()) throw Error(state_->error);
}

bool Work::is_completed() const {
    if (!state_) return false;
    std::lock_guard lock(state_->mutex);
    return state_->done;
}

namespace {
using namespace distributed_detail;

// Every rank computes the same verdict from the same reduced values, so all of them throw this
// together: the group stays usable.
struct Disagreement : Error {
    using Error::Error;
};

enum class Kind : int64_t { AllReduce = 1, Broadcast, AllGather, Barrier, Check };

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::AllReduce: return "all_reduce";
        case Kind::Broadcast: return "broadcast";
        case Kind::AllGather: return "all_gather";
        case Kind::Barrier: return "barrier";
        case Kind::Check: return "check_same_on_all_ranks";
    }
    return "?";
}

// One process's group: the MPI world, NCCL communicators made on first use per device, and the
// communication thread that runs every collective in call order.
class Group {
public:
    explicit Group(std::chrono::milliseconds timeout) : timeout_(timeout) {
        thread_ = std::thread([this] { loop(); });
        // MPI is initialised and finalised on the communication thread, the only one that calls it.
        try {
            run_now("init_process_group", [this] {
                world_ = make_mpi_world(interrupt_, timeout_);
                rank_ = world_->rank();
                size_ = world_->size();
                local_rank_ = world_->local_rank();
            });
        } catch (...) {
            shut_down();  // the destructor does not run for a constructor that throws
            throw;
        }
    }
    ~Group() { shut_down(); }

    int rank() const { return rank_; }
    int size() const { return size_; }
    int local_rank() const { return local_rank_; }
    std::chrono::milliseconds timeout() const { return timeout_; }
    World& world() { return *world_; }
    // Collectives are numbered from 1 in call order, the same on every rank, so messages can say
    // which one failed (communication thread only).
    void begin_collective() { ++collectives_; }
    int64_t collectives() const { return collectives_; }

    std::shared_ptr<Work::State> submit(std::string what, std::function<void()> fn, bool first = false) {
        auto state = std::make_shared<Work::State>();
        {
            std::lock_guard lock(mutex_);
            LATTE_CHECK(!stopping_, what, ": the process group is shutting down");
            Task task{std::move(what), std::move(fn), state};
            if (first) queue_.push_front(std::move(task));
            else queue_.push_back(std::move(task));
        }
        queue_cv_.notify_one();
        return state;
    }
    void run_now(std::string what, std::function<void()> fn) { Work(submit(std::move(what), std::move(fn))).wait(); }

    // Whether device `device` has its NCCL communicator yet (communication thread only).
    bool has_nccl(int device) const { return nccl_.count(device) > 0; }
    // The NCCL transport of CUDA device `device` (communication thread only).
    Transport& nccl(int device) {
        auto it = nccl_.find(device);
        if (it == nccl_.end()) it = nccl_.emplace(device, make_nccl_transport(*world_, device, timeout_)).first;
        return *it->second;
    }

    std::string broken() {
        std::lock_guard lock(mutex_);
        return broken_;
    }

    void report_failure(const std::string& message) {
        if (!broken().empty()) return;  // a peer's failure (it knows) or ours, already sent
        interrupt_ = true;              // a collective waiting now gives up at once
        const std::string notice = "rank " + std::to_string(rank_) + " failed: " + message;
        auto state = submit("report_failure", [this, notice] {
            mark_broken(notice);
            world_->notify_failure(notice, Clock::now() + std::chrono::seconds(5));
        }, /*first=*/true);
        try {
            Work(state).wait();
        } catch (const Error&) {  // the notice is best effort: we are failing anyway
        }
        // mpirun stops the whole job once this rank exits: give the others a moment to print.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }

    void shut_down() {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            stopping_ = true;
        }
        queue_cv_.notify_one();
        thread_.join();
    }

private:
    struct Task {
        std::string what;
        std::function<void()> fn;
        std::shared_ptr<Work::State> state;
    };

    // The closure of a collective that failed while MPI/NCCL may still hold its buffers (a pending
    // request is never cancelled) is kept for good, so its tensors are never freed: not even at
    // exit, when the backends that would free them may already be gone.
    static void abandon(std::function<void()> fn) {
        static auto* abandoned = new std::vector<std::function<void()>>();
        abandoned->push_back(std::move(fn));
    }

    // Communication thread only. NCCL communicators are aborted at once: a peer may never match
    // their calls, and at exit the CUDA runtime may already be gone.
    void mark_broken(const std::string& message) {
        {
            std::lock_guard lock(mutex_);
            if (broken_.empty()) broken_ = message;
        }
        for (auto& [device, transport] : nccl_) transport->abandon();
    }

    static void finish(Work::State& state, std::string error) {
        {
            std::lock_guard lock(state.mutex);
            state.done = true;
            state.error = std::move(error);
        }
        state.done_cv.notify_all();
    }

    void run(Task& task) {
        if (const std::string b = broken(); !b.empty() && task.what != "report_failure") {
            finish(*task.state, task.what + ": the process group is broken: " + b);
            return;
        }
        try {
            task.fn();
            finish(*task.state, "");
        } catch (const Disagreement& e) {
            finish(*task.state, task.what + " on rank " + std::to_string(rank_) + ": " + e.what());
        } catch (const PeerFailure& p) {
            abandon(std::move(task.fn));
            mark_broken(p.message);
            finish(*task.state, task.what + " on rank " + std::to_string(rank_) + ": " + p.message);
        } catch (const std::exception& e) {
            abandon(std::move(task.fn));
            const std::string message = task.what + " on rank " + std::to_string(rank_) + ": " + e.what();
            finish(*task.state, message);
            if (!world_ || task.what == "report_failure") return;
            if (interrupt_) return;  // report_failure is next in the queue and tells the others
            // Our collective failed (timeout, MPI error, mismatch): tell the others, so they
            // fail with this message rather than wait for us.
            mark_broken(message);
            try {
                world_->notify_failure("rank " + std::to_string(rank_) + " failed: " + message,
                                       Clock::now() + std::chrono::seconds(5));
            } catch (const std::exception&) {
            }
        }
    }

    void loop() {
        for (;;) {
            Task task;
            {
                std::unique_lock lock(mutex_);
                queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) break;  // stopping, and every queued task has run
                task = std::move(queue_.front());
                queue_.pop_front();
            }
            run(task);
        }
        // Leaving MPI with a collective a peer never matched would hang: only a healthy group finalises.
        nccl_.clear();  // a broken group's were aborted when it broke
        if (world_ && broken().empty()) {
            try {
                world_->finalize();
            } catch (const std::exception&) {
            }
        }
    }

    std::chrono::milliseconds timeout_;
    int64_t collectives_ = 0;
    std::atomic<bool> interrupt_{false};
    std::unique_ptr<World> world_;
    std::map<int, std::unique_ptr<Transport>> nccl_;
    int rank_ = 0, size_ = 1, local_rank_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable queue_cv_;
    std::deque<Task> queue_;
    bool stopping_ = false;
    std::string broken_;
};

// The process's group; at exit its destructor leaves MPI if the program did not.
std::unique_ptr<Group>& group_slot() {
    static std::unique_ptr<Group> group;
    return group;
}

Group& group(const char* op) {
    auto& g = group_slot();
    LATTE_CHECK(g != nullptr, "distributed::", op, ": the process group is not initialized (call "
                "distributed::init_process_group() first, in a program started by mpirun)");
    return *g;
}

void check_tensor(const Tensor& t, const char* op) {
    check_defined(t, op, "t");
    LATTE_CHECK(t.is_contiguous(), "distributed::", op, ": the tensor of shape ", shape_str(t.shape()),
                " is not contiguous (call contiguous() first)");
    LATTE_CHECK(t.device().is_cpu() || t.device().is_cuda(), "distributed::", op, ": unsupported device ",
                t.device().str());
    // Refused here, on the calling thread and before the ranks agree on the call: refused on the
    // communication thread, it would break the group for good.
    LATTE_CHECK(t.device().is_cpu() || distributed_detail::nccl_compiled_in(), "distributed::", op,
                ": a tensor on ", t.device().str(), " needs NCCL, and latte was built without it (it needs the CUDA "
                "backend, and libnccl.so with nccl.h in the CUDA toolkit); copy the tensor to the CPU");
}

// Where a collective's tensor is: the CPU (MPI), or a CUDA device whose NCCL communicator exists
// or is made by this call (collectively, so every rank must make one at the same call).
enum class Where : int64_t { Cpu = 0, Cuda = 1, CudaNewCommunicator = 2 };

Where where_of(Group& g, const Tensor& t) {
    if (t.device().is_cpu()) return Where::Cpu;
    return g.has_nccl(t.device().index) ? Where::Cuda : Where::CudaNewCommunicator;
}

// Every rank's `values` (all[r * n + i]); a rank whose values do not come within the deadline
// is named, with the collective it did not join.
std::vector<int64_t> exchange(Group& g, const std::vector<int64_t>& values, const std::string& op,
                              Clock::time_point deadline) {
    std::vector<int64_t> all(values.size() * static_cast<size_t>(g.size()));
    try {
        g.world().exchange(values.data(), static_cast<int>(values.size()), all.data(), deadline);
    } catch (const Absent& absent) {
        std::string ranks;
        for (size_t i = 0; i < absent.ranks.size(); ++i) ranks += (i ? ", " : "") + std::to_string(absent.ranks[i]);
        LATTE_FAIL(op, " (collective #", g.collectives(), " of the process group) timed out after ",
                   seconds(g.timeout()), ": rank", absent.ranks.size() == 1 ? " " : "s ", ranks, " did not arrive. It is still computing (raise --timeout "
                   "if a step can take longer), it stopped, or the network to it is cut");
    }
    return all;
}

// One rank's collective, as the agreement check's values (kind, dtype, count, extra, where) say.
std::string describe_call(const int64_t* v) {
    const auto kind = static_cast<Kind>(v[0]);
    std::string text = detail::concat(kind_name(kind), " of ", v[2], " ", dtype_name(static_cast<DType>(v[1])),
                                      " elements");
    if (kind == Kind::Broadcast) text += " from root " + std::to_string(v[3]);
    return text + (v[4] == static_cast<int64_t>(Where::Cpu) ? " on the CPU" : " on a GPU");
}

// Every rank must be in the same collective: compares (kind, dtype, count, extra, where) of all
// ranks, so a mismatch throws on every rank, with the same message, instead of hanging or
// reducing unrelated data.
void agree(Group& g, Kind kind, DType dtype, int64_t count, int64_t extra, Where where, Clock::time_point deadline) {
    g.begin_collective();
    const std::vector<int64_t> mine{static_cast<int64_t>(kind), static_cast<int64_t>(dtype), count, extra,
                                    static_cast<int64_t>(where)};
    const std::vector<int64_t> all = exchange(g, mine, kind_name(kind), deadline);
    const size_t n = mine.size();
    bool same = true;
    for (size_t i = 0; i < all.size(); ++i) same = same && all[i] == mine[i % n];
    if (same) return;
    std::string calls;
    for (int r = 0; r < g.size(); ++r)
        calls += detail::concat(r ? "; " : "", "rank ", r, ": ", describe_call(&all[static_cast<size_t>(r) * n]));
    throw Disagreement(detail::concat("the ranks called different collectives (collective #", g.collectives(),
                                      " of the process group): ", calls));
}

// Throws unless every rank holds the same `values` (their count already agreed), naming the first
// rank whose values differ from rank 0's.
void check_values(Group& g, const std::vector<int64_t>& values, const std::string& what, Clock::time_point deadline) {
    const std::vector<int64_t> all = exchange(g, values, what, deadline);
    const size_t n = values.size();
    for (int r = 1; r < g.size(); ++r)
        for (size_t i = 0; i < n; ++i)
            if (all[static_cast<size_t>(r) * n + i] != all[i])
                throw Disagreement(detail::concat("distributed: ", what, " differs between ranks: value ", i, " is ",
                                                  all[i], " on rank 0 but ", all[static_cast<size_t>(r) * n + i],
                                                  " on rank ", r));
}

// The transport of t's device, set to start after `ready` (see marker_of).
Transport& transport_for(Group& g, const Tensor& t, const std::shared_ptr<void>& ready) {
    Transport& transport = t.device().is_cpu() ? static_cast<Transport&>(g.world()) : g.nccl(t.device().index);
    transport.after(ready);
    return transport;
}

// Taken on the calling thread when a collective is submitted: the point in t's device queue after
// which t holds its value, so NCCL waits for that much of the GPU's work and no more (the
// kernels the caller queues later overlap the communication).
std::shared_ptr<void> marker_of(const Tensor& t) { return backend_for(t.device()).record_marker(); }

}  // namespace

bool is_available() { return distributed_detail::mpi_compiled_in(); }

bool launched_by_mpirun() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
        if (std::getenv(name)) return true;
    return false;
}

void init_process_group(std::chrono::milliseconds timeout) {
    LATTE_CHECK(is_available(), "distributed::init_process_group: latte was built without MPI (configure with "
                "-DLATTE_MPI=ON after `apt-get install libopenmpi-dev`)");
    LATTE_CHECK(!group_slot(), "distributed::init_process_group: the process group is already initialized");
    LATTE_CHECK(timeout.count() > 0, "distributed::init_process_group: the timeout must be positive, got ",
                timeout.count(), " ms");
    group_slot() = std::make_unique<Group>(timeout);
}

bool is_initialized() { return group_slot() != nullptr; }

void destroy_process_group() { group_slot().reset(); }

int rank() { return group_slot() ? group_slot()->rank() : 0; }
int world_size() { return group_slot() ? group_slot()->size() : 1; }
int local_rank() { return group_slot() ? group_slot()->local_rank() : 0; }

Work all_reduce_async(const Tensor& t, ReduceOp op) { return all_reduce_async(t, op, Chain{nullptr}); }

Work all_reduce_async(const Tensor& t, ReduceOp op, const Chain& chain) {
    Group& g = group("all_reduce");
    check_tensor(t, "all_reduce");
    LATTE_CHECK(op == ReduceOp::Sum || t.dtype() != DType::Int64, "distributed::all_reduce: Avg of an int64 tensor "
                "(shape ", shape_str(t.shape()), ") is not exact; use Sum");
    // The communication thread may write t until the Work is done; readers saved by autograd
    // before this call must notice (version counter).
    t.storage()->bump_version();
    const Tensor keep = t.detach();
    return Work(g.submit("all_reduce", [&g, keep, op, failed = chain.failed, ready = marker_of(keep)] {
        // A plain error (not a Disagreement): the group breaks and the other ranks are told.
        LATTE_CHECK(!failed || !failed->load(), "an earlier collective of its chain failed on this rank, so the "
                    "ranks' collectives no longer line up");
        try {
            agree(g, Kind::AllReduce, keep.dtype(), keep.numel(), static_cast<int64_t>(op), where_of(g, keep),
                  Clock::now() + g.timeout());
            transport_for(g, keep, ready).all_reduce(keep.view().data, keep.dtype(), keep.numel(), op == ReduceOp::Avg,
                                              Clock::now() + g.timeout());
        } catch (...) {
            if (failed) failed->store(true);
            throw;
        }
    }));
}

void all_reduce(const Tensor& t, ReduceOp op) { all_reduce_async(t, op).wait(); }

Work broadcast_async(const Tensor& t, int root) {
    Group& g = group("broadcast");
    check_tensor(t, "broadcast");
    LATTE_CHECK(root >= 0 && root < g.size(), "distributed::broadcast: root ", root, " is not a rank of a world of ",
                g.size());
    t.storage()->bump_version();
    const Tensor keep = t.detach();
    return Work(g.submit("broadcast", [&g, keep, root, ready = marker_of(keep)] {
        agree(g, Kind::Broadcast, keep.dtype(), keep.numel(), root, where_of(g, keep), Clock::now() + g.timeout());
        transport_for(g, keep, ready).broadcast(keep.view().data, keep.numel() * dtype_size(keep.dtype()), root,
                                         Clock::now() + g.timeout());
    }));
}

void broadcast(const Tensor& t, int root) { broadcast_async(t, root).wait(); }

std::vector<Tensor> all_gather(const Tensor& t) {
    Group& g = group("all_gather");
    check_tensor(t, "all_gather");
    // Checked here, before the ranks commit to the call (a rank-local error after it breaks the group).
    LATTE_CHECK(t.numel() * int64_t(dtype_size(t.dtype())) <= int64_t{INT32_MAX}, "distributed::all_gather: the "
                "tensor of shape ", shape_str(t.shape()), " has more bytes per rank than one MPI call carries (2^31 - 1)");
    Shape out_shape{static_cast<int64_t>(g.size())};
    out_shape.insert(out_shape.end(), t.shape().begin(), t.shape().end());
    Tensor out = Tensor::empty(out_shape, t.options());
    const Tensor keep = t.detach();
    g.run_now("all_gather", [&g, keep, out, ready = marker_of(keep)] {
        const auto deadline = Clock::now() + g.timeout();
        agree(g, Kind::AllGather, keep.dtype(), keep.numel(), keep.dim(), where_of(g, keep), deadline);
        check_values(g, keep.shape(), "all_gather's tensor shape", deadline);  // not only the element count
        transport_for(g, keep, ready).all_gather(keep.view().data, out.view().data, keep.numel() * dtype_size(keep.dtype()),
                                          Clock::now() + g.timeout());
    });
    std::vector<Tensor> parts;
    for (int r = 0; r < g.size(); ++r)
        parts.push_back(out.as_strided(t.shape(), contiguous_strides(t.shape()), out.offset() + r * t.numel()));
    return parts;
}

void barrier() {
    Group& g = group("barrier");
    g.run_now("barrier", [&g] {
        const auto deadline = Clock::now() + g.timeout();
        agree(g, Kind::Barrier, DType::Int64, 0, 0, Where::Cpu, deadline);  // every rank has arrived: a barrier
    });
}

void check_same_on_all_ranks(const std::vector<int64_t>& values, const std::string& what) {
    Group& g = group("check_same_on_all_ranks");
    g.run_now("check_same_on_all_ranks", [&g, values, what] {
        const auto deadline = Clock::now() + g.timeout();
        agree(g, Kind::Check, DType::Int64, static_cast<int64_t>(values.size()), 0, Where::Cpu, deadline);
        check_values(g, values, what, deadline);
    });
}

void report_failure(const std::string& message) {
    if (group_slot()) group_slot()->report_failure(message);
}

}  // namespace latte::distributed
