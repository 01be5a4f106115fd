// DistributedDataParallel against one process: N ranks with batch B/N each must end where one
// process with batch B ends. Every rank trains the one-process reference itself (no
// communication), then compares.
#include <algorithm>
#include <csignal>
#include <cmath>
#include <limits>
#include <set>

#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "core/factory.h"
#include "experiments/stop_signal.h"
#include "experiments/teacher_student.h"
#include "nn/data_parallel.h"
#include "nn/optim.h"
#include "ops/loss.h"
#include "ops/ops.h"

using namespace latte;
namespace dist = latte::distributed;

namespace {

constexpr int64_t kBatch = 4, kLength = 5;

std::shared_ptr<nn::Attention> make_model(const std::string& kind) {
    experiments::ModelSizes sizes;
    sizes.D = 16;
    sizes.H = 4;
    sizes.d = 4;
    sizes.G = 2;
    sizes.r = 8;
    Generator gen(11);
    auto model = experiments::make_student(kind, sizes, gen);
    model->to(DType::Float64);
    return model;
}

struct Batch {
    Tensor x, y, target;
};

// The whole batch of step `step`, the same on every rank.
Batch whole_batch(int64_t step) {
    Generator gen(1000 + static_cast<uint64_t>(step));
    const TensorOptions f64 = TensorOptions{}.with_dtype(DType::Float64);
    Batch b;
    b.x = randn({kBatch, kLength, 16}, gen, f64);
    b.y = randn({kBatch, kLength, 16}, gen, f64);
    b.target = randn({kBatch, kLength, 16}, gen, f64);
    return b;
}

Batch shard(const Batch& b) { return {nn::shard_batch(b.x), nn::shard_batch(b.y), nn::shard_batch(b.target)}; }

Tensor loss_of(const nn::Attention& model, const Batch& b) { return mse_loss(model(b.x, b.y), b.target); }

// max |a - b| / max |b| over all parameters (or gradients).
double relative_difference(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const auto av = a[i].to_vector<double>(), bv = b[i].to_vector<double>();
        REQUIRE(av.size() == bv.size());
        for (size_t k = 0; k < av.size(); ++k) {
            diff = std::max(diff, std::abs(av[k] - bv[k]));
            scale = std::max(scale, std::abs(bv[k]));
        }
    }
    return diff / scale;
}

std::vector<Tensor> gradients(const nn::Module& m) {
    std::vector<Tensor> g;
    for (const Tensor& p : m.parameters()) g.push_back(p.grad());
    return g;
}

// Trains `steps` Adam steps; with `ddp` each rank sees its shard of every batch.
void train(nn::Attention& model, int64_t steps, nn::DistributedDataParallel* ddp) {
    nn::Adam opt(model.parameters(), 1e-2);
    for (int64_t step = 0; step < steps; ++step) {
        const Batch b = ddp ? shard(whole_batch(step)) : whole_batch(step);
        opt.zero_grad();
        loss_of(model, b).backward();
        opt.step();
    }
}

// Parameters a, b and one the loss never reads, registered in that order.
struct ThreeParameters : nn::Module {
    ThreeParameters() {
        const TensorOptions f64 = TensorOptions{}.with_dtype(DType::Float64);
        register_parameter("a", full({3}, 2.0, f64));
        register_parameter("b", full({3}, 3.0, f64));
        register_parameter("unused", full({3}, 5.0, f64));
    }
    Tensor a() const { return param("a"); }
    Tensor b() const { return param("b"); }
    Tensor unused() const { return param("unused"); }
};

nn::DataParallelOptions one_parameter_per_bucket() {
    nn::DataParallelOptions options;
    options.bucket_cap_mb = 1e-9;
    return options;
}

}  // namespace

TEST_CASE("DDP on N ranks with batch B/N equals one process with batch B after 20 steps", "[mpi]") {
    for (const char* kind : {"mha", "gqa", "mla"}) {
        INFO(kind);
        auto reference = make_model(kind);
        train(*reference, 20, nullptr);
        auto replica = make_model(kind);
        nn::DistributedDataParallel ddp(*replica);
        train(*replica, 20, &ddp);
        CHECK(relative_difference(replica->parameters(), reference->parameters()) < 1e-12);
        // The model moved: the check above compares trained weights, not two initial ones.
        CHECK(relative_difference(make_model(kind)->parameters(), reference->parameters()) > 1e-3);
    }
}

TEST_CASE("DDP buckets: each parameter once, in reverse order, within the cap; any boundaries give the same result",
          "[mpi]") {
    auto model = make_model("mla");
    std::vector<std::string> names;
    for (const auto& [name, p] : model->named_parameters()) names.push_back(name);
    std::reverse(names.begin(), names.end());

    for (double cap_mb : {1e-9, 1.0 / 1024, 25.0}) {
        INFO("bucket_cap_mb " << cap_mb);
        auto replica = make_model("mla");
        nn::DataParallelOptions options;
        options.bucket_cap_mb = cap_mb;
        nn::DistributedDataParallel ddp(*replica, options);
        std::vector<std::string> flat;
        for (const auto& bucket : ddp.bucket_names()) {
            CHECK(!bucket.empty());
            flat.insert(flat.end(), bucket.begin(), bucket.end());
        }
        CHECK(flat == names);
        if (cap_mb == 1e-9) CHECK(ddp.bucket_names().size() == names.size());
        if (cap_mb == 25.0) CHECK(ddp.bucket_names().size() == 1);
        if (cap_mb == 1.0 / 1024) CHECK(ddp.bucket_names().size() > 1);  // 1 KiB: several, some shared

        auto reference = make_model("mla");
        train(*reference, 5, nullptr);
        train(*replica, 5, &ddp);
        CHECK(relative_difference(replica->parameters(), reference->parameters()) < 1e-12);
        // With one bucket per parameter, the first buckets start before backward ends.
        if (cap_mb == 1e-9) CHECK(ddp.buckets_started_early() > 0);
    }
}

TEST_CASE("DDP no_sync accumulates locally; the next backward averages the sums", "[mpi]") {
    auto reference = make_model("gqa"), local = make_model("gqa"), replica = make_model("gqa");
    nn::DistributedDataParallel ddp(*replica);
    const Batch first = whole_batch(0), second = whole_batch(1);

    loss_of(*reference, first).backward();
    loss_of(*reference, second).backward();
    loss_of(*local, shard(first)).backward();
    {
        auto guard = ddp.no_sync();
        loss_of(*replica, shard(first)).backward();
    }
    // Nothing was communicated: the replica holds its own shard's gradient.
    CHECK(relative_difference(gradients(*replica), gradients(*local)) == 0);
    loss_of(*replica, shard(second)).backward();
    CHECK(relative_difference(gradients(*replica), gradients(*reference)) < 1e-12);
}

TEST_CASE("DDP refuses a batch that does not split evenly and a model that differs between ranks", "[mpi]") {
    if (dist::world_size() < 2) return;
    CHECK_THROWS_WITH(nn::shard_batch(zeros({dist::world_size() + 1, 2})), Catch::Contains("does not split evenly"));
    auto model = make_model(dist::rank() == 0 ? "mha" : "mla");
    CHECK_THROWS_WITH(nn::DistributedDataParallel(*model), Catch::Contains("differs between ranks"));
}

TEST_CASE("DDP: a parameter no rank uses keeps no gradient; one used on some ranks gets the average", "[mpi]") {
    ThreeParameters m;
    nn::DistributedDataParallel ddp(m, one_parameter_per_bucket());
    // sum(a * a) on every rank; sum(b) only on rank 0; `unused` nowhere.
    Tensor loss = sum(mul(m.a(), m.a()));
    if (dist::rank() == 0) loss = add(loss, sum(m.b()));
    loss.backward();
    CHECK(m.a().grad().to_vector<double>() == std::vector<double>{4, 4, 4});
    CHECK(m.b().grad().to_vector<double>() == std::vector<double>(3, 1.0 / dist::world_size()));
    CHECK_FALSE(m.unused().grad().defined());  // as in one process: optimizers skip it
}

TEST_CASE("DDP refuses to go on after a backward that threw, instead of averaging mismatched gradients", "[mpi]") {
    ThreeParameters m;
    nn::DistributedDataParallel ddp(m, one_parameter_per_bucket());
    // The engine runs sum(a * a)'s branch first (a's hook fires), then mul(b, c)'s backward
    // finds c written in place and throws: on every rank, before any bucket was launched.
    Tensor c = full({3}, 1.0, TensorOptions{}.with_dtype(DType::Float64));
    Tensor loss = add(sum(mul(m.b(), c)), sum(mul(m.a(), m.a())));
    copy_(c, full({3}, 2.0, TensorOptions{}.with_dtype(DType::Float64)));
    CHECK_THROWS_WITH(loss.backward(), Catch::Contains("modified by an in-place operation"));
    Tensor again = sum(mul(m.a(), m.a()));
    CHECK_THROWS_WITH(again.backward(), Catch::Contains("an earlier backward stopped with an error"));
}

TEST_CASE("DDP gives frozen parameters rank 0's values too, and refuses one unfrozen after it was built",
          "[mpi]") {
    ThreeParameters m;
    {
        NoGradGuard no_grad;
        copy_(m.unused(), full({3}, 10.0 + dist::rank(), TensorOptions{}.with_dtype(DType::Float64)));
    }
    m.unused().requires_grad_(false);  // a frozen embedding, say: every rank must still hold the same
    nn::DistributedDataParallel ddp(m);
    CHECK(m.unused().to_vector<double>() == std::vector<double>(3, 10.0));
    m.unused().requires_grad_(true);  // gradual unfreezing: it has no bucket, so it would not be averaged
    CHECK_THROWS_WITH(sum(mul(m.a(), m.unused())).backward(), Catch::Contains("build the DistributedDataParallel after unfreezing"));
}

TEST_CASE("check_same_on_all_ranks compares the extremes of int64 alike on every rank", "[mpi]") {
    const int64_t lowest = std::numeric_limits<int64_t>::min(), highest = std::numeric_limits<int64_t>::max();
    CHECK_NOTHROW(dist::check_same_on_all_ranks({lowest, highest, 0}, "extremes"));
    CHECK_THROWS_WITH(dist::check_same_on_all_ranks({dist::rank() == 0 ? lowest : highest}, "extremes"),
                      Catch::Contains("extremes"));
}

TEST_CASE("DDP refuses a backward after Module::to changed its parameters' dtype", "[mpi]") {
    ThreeParameters m;
    nn::DistributedDataParallel ddp(m);
    m.to(DType::Float32);
    CHECK_THROWS_WITH(sum(m.a()).backward(), Catch::Contains("build the DistributedDataParallel after Module::to"));
}

TEST_CASE("the ranks agree on the stop signal: SIGTERM anywhere wins over SIGINT", "[mpi]") {
    std::vector<double> numbers{double(dist::rank()), 1.0};
    const int mine = dist::rank() == 0 ? SIGINT : SIGTERM;
    const int agreed = experiments::sum_over_ranks_and_agree_on_stop(numbers, mine);
    CHECK(agreed == (dist::world_size() > 1 ? SIGTERM : SIGINT));
    CHECK(numbers[1] == dist::world_size());
    CHECK(numbers[0] == dist::world_size() * (dist::world_size() - 1) / 2.0);
    std::vector<double> none{0.0};
    CHECK(experiments::sum_over_ranks_and_agree_on_stop(none, 0) == 0);
}
