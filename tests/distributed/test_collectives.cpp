// The collectives against closed forms: rank r contributes values that depend on r, so each
// result is known exactly.
#include <catch2/catch.hpp>

#include "core/distributed.h"
#include "core/factory.h"
#include "ops/movement.h"

using namespace latte;
namespace dist = latte::distributed;

namespace {

// Element i of rank r: r * 1000 + i.
template <class T>
Tensor rank_values(int64_t n, int rank) {
    std::vector<double> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = static_cast<double>(rank * 1000 + i);
    return from_vector(values, {n}, TensorOptions{}.with_dtype(dtype_of<T>()));
}

}  // namespace

TEST_CASE("all_reduce sums and averages every dtype across the ranks", "[mpi]") {
    const int size = dist::world_size(), rank = dist::rank();
    const double rank_sum = size * (size - 1) / 2.0;  // 0 + 1 + ... + (size - 1)
    for (int64_t n : {1, 7, 1000}) {
        Tensor f = rank_values<float>(n, rank), d = rank_values<double>(n, rank), i = rank_values<int64_t>(n, rank);
        dist::all_reduce(f);
        dist::all_reduce(d, dist::ReduceOp::Avg);
        dist::all_reduce(i);
        const auto fv = f.to_vector<double>(), dv = d.to_vector<double>(), iv = i.to_vector<double>();
        for (int64_t k = 0; k < n; ++k) {
            CHECK(fv[size_t(k)] == 1000 * rank_sum + double(size) * double(k));
            CHECK(dv[size_t(k)] == Approx((1000 * rank_sum + double(size) * double(k)) / size).epsilon(1e-15));
            CHECK(iv[size_t(k)] == 1000 * rank_sum + double(size) * double(k));
        }
    }
}

TEST_CASE("asynchronous all_reduces complete in order and bump the tensor's version", "[mpi]") {
    Tensor a = rank_values<double>(100000, dist::rank()), b = rank_values<double>(3, dist::rank());
    const uint64_t before = a.storage()->version();
    dist::Work wa = dist::all_reduce_async(a), wb = dist::all_reduce_async(b, dist::ReduceOp::Avg);
    wb.wait();
    wa.wait();
    CHECK(wa.is_completed());
    CHECK(a.storage()->version() > before);
    const double rank_sum = dist::world_size() * (dist::world_size() - 1) / 2.0;
    CHECK(a.to_vector<double>()[99999] == 1000 * rank_sum + dist::world_size() * 99999.0);
    CHECK(b.to_vector<double>()[2] == Approx((1000 * rank_sum + dist::world_size() * 2.0) / dist::world_size()));
}

TEST_CASE("broadcast copies the root's tensor, all_gather collects every rank's", "[mpi]") {
    const int size = dist::world_size(), last = size - 1;
    Tensor t = rank_values<float>(5, dist::rank());
    dist::broadcast(t, last);
    CHECK(t.to_vector<double>() == rank_values<float>(5, last).to_vector<double>());

    Tensor mine = reshape(rank_values<int64_t>(6, dist::rank()), {2, 3});
    const std::vector<Tensor> all = dist::all_gather(mine);
    REQUIRE(all.size() == static_cast<size_t>(size));
    for (int r = 0; r < size; ++r) {
        CHECK(all[size_t(r)].shape() == Shape{2, 3});
        CHECK(all[size_t(r)].to_vector<double>() == rank_values<int64_t>(6, r).to_vector<double>());
    }
    dist::barrier();
}

TEST_CASE("collectives refuse bad tensors with a latte::Error", "[mpi]") {
    Tensor t = zeros({4, 3}, TensorOptions{}.with_dtype(DType::Int64));
    CHECK_THROWS_WITH(dist::all_reduce(t, dist::ReduceOp::Avg), Catch::Contains("Avg of an int64 tensor"));
    Tensor strided = transpose(zeros({4, 3}), 0, 1);
    CHECK_THROWS_WITH(dist::all_reduce(strided), Catch::Contains("not contiguous"));
    CHECK_THROWS_WITH(dist::broadcast(zeros({2}), dist::world_size()), Catch::Contains("is not a rank"));
    CHECK_THROWS_WITH(dist::init_process_group(), Catch::Contains("already initialized"));
}

TEST_CASE("ranks that call different collectives all get an error, and the group stays usable", "[mpi]") {
    if (dist::world_size() < 2) return;
    // Rank 0 reduces 3 elements, the others 4: each rank throws instead of hanging or summing
    // unrelated memory.
    Tensor t = zeros({dist::rank() == 0 ? 3 : 4});
    // Every rank's message lists each rank's call.
    CHECK_THROWS_WITH(dist::all_reduce(t), Catch::Contains("the ranks called different collectives") &&
                                               Catch::Contains("rank 0: all_reduce of 3 float32 elements on the CPU") &&
                                               Catch::Contains("rank 1: all_reduce of 4 float32 elements on the CPU"));
    CHECK_THROWS_WITH(dist::check_same_on_all_ranks({dist::rank()}, "the rank"),
                      Catch::Contains("the rank differs between ranks: value 0 is 0 on rank 0 but 1 on rank 1"));
    Tensor ok = rank_values<double>(2, dist::rank());
    dist::all_reduce(ok);
    CHECK(ok.to_vector<double>()[1] == 1000 * dist::world_size() * (dist::world_size() - 1) / 2.0 + dist::world_size());
}

TEST_CASE("local_rank numbers the ranks of one machine from 0", "[mpi]") {
    // CTest starts every rank on this machine: the local ranks are the ranks.
    const std::vector<Tensor> all = dist::all_gather(
        from_vector(std::vector<double>{double(dist::local_rank())}, {1}, TensorOptions{}.with_dtype(DType::Int64)));
    for (int r = 0; r < dist::world_size(); ++r) CHECK(all[size_t(r)].to_vector<double>()[0] == r);
}
