// The MPI world of a process group (core/distributed_transport.h). The ranks' agreement check
// sends each rank's values point to point and polls for them, so a wait notices a deadline (and
// which ranks never sent theirs) or another rank's failure notice: a rank that never joins is
// caught there. The data collectives that follow a passed check are blocking calls (every rank
// is in them), watched by a thread that ends the process at the deadline. Only the communication
// thread calls MPI (MPI_THREAD_FUNNELED: it is also the thread that calls MPI_Init_thread).
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <climits>
#include <memory>
#include <thread>
#include <vector>

#include "core/distributed_transport.h"
#include "core/error.h"

namespace latte::distributed_detail {
namespace {

constexpr int kNoticeTag = 1;  // a failure notice: the failing rank's message
constexpr int kAckTag = 2;     // "heard it", so the failing rank may exit
constexpr int kArrivalTag = 3; // a rank's values in the agreement check that opens every collective
constexpr int64_t kChunk = int64_t{1} << 28;  // elements per MPI call: MPI counts are int

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(rc, text, &length);
    LATTE_FAIL(what, " failed: ", std::string(text, static_cast<size_t>(length)));
}

MPI_Datatype mpi_type(DType dtype) {
    switch (dtype) {
        case DType::Float32: return MPI_FLOAT;
        case DType::Float64: return MPI_DOUBLE;
        case DType::Int64: return MPI_INT64_T;
    }
    LATTE_FAIL("distributed: no MPI type for dtype ", static_cast<int>(dtype));
}

template <class T>
void divide(void* data, int64_t count, int size) {
    auto* p = static_cast<T*>(data);
    for (int64_t i = 0; i < count; ++i) p[i] /= static_cast<T>(size);
}

class MpiWorld final : public World {
public:
    MpiWorld(const std::atomic<bool>& interrupt, std::chrono::milliseconds timeout)
        : interrupt_(interrupt), timeout_(timeout) {
        int initialized = 0, finalized = 0;
        MPI_Initialized(&initialized);
        MPI_Finalized(&finalized);
        LATTE_CHECK(!finalized, "distributed::init_process_group: MPI was already finalized in this process (MPI "
                    "cannot start twice: keep one process group for the whole run)");
        if (!initialized) {
            int provided = 0;
            check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
            owns_mpi_ = true;
            LATTE_CHECK(provided >= MPI_THREAD_FUNNELED, "distributed::init_process_group: this MPI offers thread "
                        "level ", provided, ", below MPI_THREAD_FUNNELED");
        }
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
        check(MPI_Comm_dup(MPI_COMM_WORLD, &notices_), "MPI_Comm_dup");
        check(MPI_Comm_dup(MPI_COMM_WORLD, &arrivals_), "MPI_Comm_dup");
        MPI_Comm_set_errhandler(arrivals_, MPI_ERRORS_RETURN);
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        MPI_Comm_set_errhandler(notices_, MPI_ERRORS_RETURN);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
        MPI_Comm node = MPI_COMM_NULL;  // the ranks that share this machine's memory
        check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
        MPI_Comm_rank(node, &local_rank_);
        MPI_Comm_free(&node);
        watchdog_ = std::thread([this] { watch(); });
    }
    ~MpiWorld() override { stop_watchdog(); }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }

    // The data collectives below are blocking MPI calls: they run only after every rank passed the
    // agreement check (a non-blocking, polled wait, where a missing rank is noticed), and Open MPI's
    // blocking algorithms move large messages about twice as fast as its non-blocking ones.
    void all_reduce(void* data, DType dtype, int64_t count, bool average, Clock::time_point deadline) override {
        const Blocking blocking(*this, "all_reduce", deadline);
        for (int64_t first = 0; first < count; first += kChunk) {
            const int n = static_cast<int>(std::min(kChunk, count - first));
            check(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(data) + first * dtype_size(dtype), n, mpi_type(dtype),
                                MPI_SUM, comm_),
                  "MPI_Allreduce");
        }
        if (!average) return;
        if (dtype == DType::Float32) divide<float>(data, count, size_);
        else if (dtype == DType::Float64) divide<double>(data, count, size_);
        else LATTE_FAIL("distributed::all_reduce: Avg needs a floating dtype, got ", dtype_name(dtype));
    }

    void exchange(const int64_t* mine, int count, int64_t* all, Clock::time_point deadline) override {
        // On the heap, and left there if the wait gives up: pending requests still use them.
        struct Pending {
            std::vector<int64_t> sent, received;
            std::vector<MPI_Request> requests;  // a send and a receive per other rank
        };
        auto p = std::make_unique<Pending>();
        p->sent.assign(mine, mine + count);
        p->received.resize(static_cast<size_t>(count) * static_cast<size_t>(size_));
        for (int r = 0; r < size_; ++r) {
            if (r == rank_) continue;
            MPI_Request send, receive;
            check(MPI_Isend(p->sent.data(), count, MPI_INT64_T, r, kArrivalTag, arrivals_, &send), "MPI_Isend");
            p->requests.push_back(send);
            check(MPI_Irecv(p->received.data() + static_cast<size_t>(r) * count, count, MPI_INT64_T, r, kArrivalTag,
                            arrivals_, &receive),
                  "MPI_Irecv");
            p->requests.push_back(receive);
        }
        try {
            poll_until([&] {
                int done = 0;
                check(MPI_Testall(static_cast<int>(p->requests.size()), p->requests.data(), &done,
                                  MPI_STATUSES_IGNORE),
                      "MPI_Testall");
                return done != 0;
            }, "the ranks' agreement check", deadline, [&] { return absent_ranks(p->requests); });
        } catch (...) {
            p.release();
            throw;
        }
        std::copy(p->received.begin(), p->received.end(), all);
        std::copy(mine, mine + count, all + static_cast<size_t>(rank_) * count);
    }

    void broadcast(void* data, std::size_t bytes, int root, Clock::time_point deadline) override {
        const Blocking blocking(*this, "broadcast", deadline);
        for (std::size_t first = 0; first < bytes; first += kChunk) {
            const int n = static_cast<int>(std::min<std::size_t>(kChunk, bytes - first));
            check(MPI_Bcast(static_cast<char*>(data) + first, n, MPI_BYTE, root, comm_), "MPI_Bcast");
        }
    }

    void all_gather(const void* in, void* out, std::size_t bytes, Clock::time_point deadline) override {
        LATTE_CHECK(bytes <= static_cast<std::size_t>(INT_MAX), "distributed::all_gather: ", bytes,
                    " bytes per rank is more than one MPI call carries (2^31 - 1)");
        const Blocking blocking(*this, "all_gather", deadline);
        check(MPI_Allgather(in, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes), MPI_BYTE, comm_),
              "MPI_Allgather");
    }

    void check_interrupts(const char* op, Clock::time_point deadline) override {
        if (std::optional<std::string> notice = receive_notice()) throw PeerFailure{*notice};
        LATTE_CHECK(!interrupt_, op, ": abandoned, this rank is failing");
        LATTE_CHECK(Clock::now() < deadline, op, " did not finish within the process group's timeout (",
                    seconds(timeout_), ") although every rank had arrived: ", others(),
                    " stopped, or the network to it is cut");
    }

    void notify_failure(const std::string& message, Clock::time_point deadline) override {
        // Kept alive if the deadline passes with a send pending.
        auto text_owner = std::make_unique<std::string>(message.substr(0, 8000));
        const std::string& text = *text_owner;
        std::vector<MPI_Request> requests;
        for (int r = 0; r < size_; ++r) {
            if (r == rank_) continue;
            MPI_Request send, ack;
            if (MPI_Isend(text.data(), static_cast<int>(text.size()), MPI_CHAR, r, kNoticeTag, notices_, &send) !=
                MPI_SUCCESS)
                continue;
            requests.push_back(send);
            if (MPI_Irecv(nullptr, 0, MPI_CHAR, r, kAckTag, notices_, &ack) == MPI_SUCCESS) requests.push_back(ack);
        }
        // Wait for the sends and the acknowledgements; a rank failing at the same time sends us
        // its notice and waits for our acknowledgement, so keep answering those.
        while (Clock::now() < deadline) {
            int done = 0;
            const int rc = MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
            if (rc != MPI_SUCCESS) break;
            if (done) return;
            receive_notice();
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        text_owner.release();
    }

    void finalize() override {
        stop_watchdog();
        MPI_Comm_free(&comm_);
        MPI_Comm_free(&notices_);
        MPI_Comm_free(&arrivals_);
        if (owns_mpi_) check(MPI_Finalize(), "MPI_Finalize");
    }

private:
    // "rank 1" or "one of ranks 0, 2, 3": the ranks this one exchanges data with.
    std::string others() const {
        std::string text = size_ == 2 ? "rank " : "one of ranks ";
        for (int r = 0, n = 0; r < size_; ++r)
            if (r != rank_) text += (n++ ? ", " : "") + std::to_string(r);
        return text;
    }

    // A collective's blocking call cannot notice a deadline or a failure notice. Every rank passed
    // the agreement check before it, so it normally completes; but a rank whose own wait for that
    // check gave up at the deadline (or was interrupted) just as the others finished it never
    // joins. The watchdog turns that hang into an exit with a message, after which mpirun stops
    // the job.
    struct Blocking {
        Blocking(MpiWorld& world, const char* op, Clock::time_point deadline) : world(world) {
            world.watched_op_ = op;
            world.watched_until_ = deadline.time_since_epoch().count();
        }
        ~Blocking() { world.watched_until_ = 0; }
        MpiWorld& world;
    };

    void watch() {
        std::unique_lock lock(watch_mutex_);
        while (!watch_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_; })) {
            const int64_t until = watched_until_;
            if (until == 0 || Clock::now().time_since_epoch().count() < until) continue;
            std::fprintf(stderr,
                         "latte (rank %d): %s did not finish within the process group's timeout (%s) although every "
                         "rank had arrived: %s stopped, or the network to it is cut. Exiting, so that mpirun stops "
                         "the job instead of hanging.\n",
                         rank_, watched_op_.load(), seconds(timeout_).c_str(), others().c_str());
            std::fflush(stderr);
            std::_Exit(1);
        }
    }

    void stop_watchdog() {
        {
            std::lock_guard lock(watch_mutex_);
            stop_ = true;
        }
        watch_cv_.notify_all();
        if (watchdog_.joinable()) watchdog_.join();
    }

    // A failure notice, if one has arrived; it is acknowledged at once.
    std::optional<std::string> receive_notice() {
        int flag = 0;
        MPI_Status status;
        if (MPI_Iprobe(MPI_ANY_SOURCE, kNoticeTag, notices_, &flag, &status) != MPI_SUCCESS || !flag) return std::nullopt;
        int length = 0;
        MPI_Get_count(&status, MPI_CHAR, &length);
        std::string text(static_cast<size_t>(std::max(length, 0)), '\0');
        MPI_Recv(text.data(), length, MPI_CHAR, status.MPI_SOURCE, kNoticeTag, notices_, MPI_STATUS_IGNORE);
        MPI_Request ack;
        if (MPI_Isend(nullptr, 0, MPI_CHAR, status.MPI_SOURCE, kAckTag, notices_, &ack) == MPI_SUCCESS)
            MPI_Request_free(&ack);
        return text;
    }

    // The ranks (in order) whose receive among `requests` (send, receive per other rank, in rank
    // order) has not completed.
    std::vector<int> absent_ranks(std::vector<MPI_Request>& requests) const {
        std::vector<int> absent;
        for (int r = 0, slot = 1; r < size_; ++r) {
            if (r == rank_) continue;
            int done = 0;
            MPI_Test(&requests[static_cast<size_t>(slot)], &done, MPI_STATUS_IGNORE);
            if (!done) absent.push_back(r);
            slot += 2;
        }
        return absent;
    }

    // Calls `done` until it says yes: yielding for the first 2 ms (ranks in step meet within
    // microseconds), then sleeping in growing steps up to 0.5 ms, so a long wait for a slower rank
    // leaves the core to the computation. At the deadline it throws Absent{absent()}; on a failure
    // notice, PeerFailure; when this rank is failing, latte::Error.
    template <class Done, class AbsentRanks>
    void poll_until(Done done, const char* op, Clock::time_point deadline, AbsentRanks absent) {
        const auto start = Clock::now();
        auto pause = std::chrono::microseconds(5);
        for (;;) {
            if (done()) return;
            if (std::optional<std::string> notice = receive_notice()) throw PeerFailure{*notice};
            LATTE_CHECK(!interrupt_, op, ": abandoned, this rank is failing");
            if (Clock::now() >= deadline) {
                if (done()) return;  // giving up while the others may complete this call: one last look first
                throw Absent{absent()};
            }
            if (Clock::now() - start < std::chrono::milliseconds(2)) {
                std::this_thread::yield();
                continue;
            }
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::microseconds(500));
        }
    }

    const std::atomic<bool>& interrupt_;
    std::atomic<int64_t> watched_until_{0};  // the running blocking call's deadline (clock ticks); 0: none
    std::atomic<const char*> watched_op_{""};
    std::mutex watch_mutex_;
    std::condition_variable watch_cv_;
    bool stop_ = false;
    std::thread watchdog_;
    MPI_Comm comm_ = MPI_COMM_NULL, notices_ = MPI_COMM_NULL, arrivals_ = MPI_COMM_NULL;
    std::chrono::milliseconds timeout_;
    int rank_ = 0, size_ = 1, local_rank_ = 0;
    bool owns_mpi_ = false;
};

}  // namespace

bool mpi_compiled_in() { return true; }

std::unique_ptr<World> make_mpi_world(const std::atomic<bool>& interrupt, std::chrono::milliseconds timeout) {
    return std::make_unique<MpiWorld>(interrupt, timeout);
}

}  // namespace latte::distributed_detail
