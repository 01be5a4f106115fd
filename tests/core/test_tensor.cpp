#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

TEST_CASE("factories fill the requested shape, dtype and values", "[core]") {
    Tensor z = zeros({2, 3});
    REQUIRE(z.shape() == Shape{2, 3});
    REQUIRE(z.dtype() == DType::Float32);
    REQUIRE(z.to_vector() == std::vector<double>(6, 0.0));
    REQUIRE(ones({4}, test::f64()).to_vector() == std::vector<double>(4, 1.0));
    REQUIRE(full({2}, 2.5).to_vector() == std::vector<double>{2.5, 2.5});
    REQUIRE(arange(0, 5).to_vector() == std::vector<double>{0, 1, 2, 3, 4});
    REQUIRE(arange(1, 2, 0.25, test::f64()).to_vector() == std::vector<double>{1, 1.25, 1.5, 1.75});
    Tensor v = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
    REQUIRE(v.strides() == Shape{3, 1});
    REQUIRE(v.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
    REQUIRE(from_vector(std::vector<double>{7}, {}).item() == 7.0);
    REQUIRE_THROWS_WITH(from_vector(std::vector<double>{1, 2, 3}, {2, 2}),
                        "from_vector: 3 values do not fill shape [2,2] (4 elements)");
    REQUIRE_THROWS_WITH(ones({2}).item(), "item: tensor of shape [2] has 2 elements, expected exactly 1");
}

TEST_CASE("random generators are reproducible and have the right moments", "[core]") {
    Generator a(42), b(42), c(43);
    const auto va = randn({1000}, a).to_vector();
    REQUIRE(va == randn({1000}, b).to_vector());
    REQUIRE(va != randn({1000}, c).to_vector());
    Generator g(7);
    const auto n = randn({20000}, g, test::f64()).to_vector();
    double mean = 0, var = 0;
    for (double x : n) mean += x;
    mean /= static_cast<double>(n.size());
    for (double x : n) var += (x - mean) * (x - mean);
    var /= static_cast<double>(n.size());
    REQUIRE(std::fabs(mean) < 0.03);
    REQUIRE(std::fabs(var - 1.0) < 0.05);
    const auto u = rand({20000}, g, test::f64(), 2.0, 3.0).to_vector();
    for (double x : u) REQUIRE((x >= 2.0 && x < 3.0));
}

TEST_CASE("views share storage and report strides", "[core]") {
    Tensor x = arange(0, 24, 1, test::f64()).detach();
    Tensor r = reshape(x, {2, 3, 4});
    REQUIRE(r.storage() == x.storage());
    Tensor p = permute(r, {2, 0, 1});
    REQUIRE(p.shape() == Shape{4, 2, 3});
    REQUIRE(p.strides() == Shape{1, 12, 4});
    REQUIRE_FALSE(p.is_contiguous());
    Tensor c = contiguous(p);
    REQUIRE(c.is_contiguous());
    REQUIRE(c.storage() != x.storage());
    // element [i][j][k] of p is r[j][k][i] = 12 j + 4 k + i
    const auto values = c.to_vector();
    REQUIRE(values[0 * 6 + 1 * 3 + 2] == 12 + 8 + 0);
    REQUIRE(values[3 * 6 + 0 * 3 + 1] == 4 + 3);
    Tensor t = transpose(r, 0, 2);
    REQUIRE(t.shape() == Shape{4, 3, 2});
    Tensor e = expand(from_vector(std::vector<double>{1, 2, 3}, {3, 1}), {2, 3, 4});
    REQUIRE(e.strides() == Shape{0, 1, 0});
    REQUIRE(sum(e).item() == 2 * 4 * 6);
    Tensor n = narrow(r, 1, 1, 2);
    REQUIRE(n.shape() == Shape{2, 2, 4});
    REQUIRE(n.offset() == 4);
    REQUIRE(slice(x, 0, 1, 10, 3).to_vector() == std::vector<double>{1, 4, 7});
    REQUIRE(slice(x, 0, -3, 100).to_vector() == std::vector<double>{21, 22, 23});
    REQUIRE(select(r, 2, -1).to_vector() == std::vector<double>{3, 7, 11, 15, 19, 23});
    REQUIRE(unsqueeze(r, 1).shape() == Shape{2, 1, 3, 4});
    REQUIRE(unsqueeze(r, -1).shape() == Shape{2, 3, 4, 1});
    REQUIRE(squeeze(unsqueeze(r, 0)).shape() == Shape{2, 3, 4});
    REQUIRE(view(r, {6, -1}).shape() == Shape{6, 4});
    REQUIRE_THROWS_WITH(view(p, {24}), Catch::Contains("view: input of shape [4,2,3]") &&
                                           Catch::Contains("is not contiguous; use reshape()"));
    REQUIRE(reshape(p, {24}).to_vector() == c.to_vector());
}

TEST_CASE("to(dtype) converts and printing shows shape and dtype", "[core]") {
    Tensor x = from_vector(std::vector<double>{1.5, -2.25}, {2}, test::f64());
    Tensor f = to(x, DType::Float32);
    REQUIRE(f.dtype() == DType::Float32);
    REQUIRE(f.to_vector() == std::vector<double>{1.5, -2.25});
    REQUIRE(x.str() == "tensor([ 1.5000, -2.2500], shape=[2], dtype=float64, device=cpu)");
    REQUIRE(reshape(arange(0, 4), {2, 2}).str() ==
            "tensor([[0., 1.],\n"
            "        [2., 3.]], shape=[2,2], dtype=float32, device=cpu)");
}

TEST_CASE("memory_stats counts live and peak bytes", "[core]") {
    const MemoryStats before = memory_stats();
    reset_peak_memory();
    {
        Tensor a = zeros({1000});  // 4000 bytes
        Tensor b = zeros({500}, test::f64());  // 4000 bytes
        REQUIRE(memory_stats().live_bytes == before.live_bytes + 8000);
    }
    const MemoryStats after = memory_stats();
    REQUIRE(after.live_bytes == before.live_bytes);
    REQUIRE(after.peak_bytes == before.live_bytes + 8000);
    REQUIRE(after.allocations >= before.allocations + 2);
    reset_peak_memory();
    REQUIRE(memory_stats().peak_bytes == after.live_bytes);
}

TEST_CASE("devices parse and a missing backend is a clear error", "[core]") {
    REQUIRE(Device::parse("cpu") == Device::cpu());
    REQUIRE(Device::parse("cuda:1") == Device::cuda(1));
    REQUIRE_THROWS_WITH(Device::parse("gpu"), "device: cannot parse 'gpu' (expected cpu, cuda or cuda:N)");
}

TEST_CASE("int64 tensors print as exact integers", "[core]") {
    Tensor t = Tensor::empty({4}, TensorOptions{}.with_dtype(DType::Int64));
    int64_t* data = static_cast<int64_t*>(t.view().data);
    data[0] = 9007199254740993;  // 2^53 + 1: not a double
    data[1] = -1234567;          // more digits than %g's 6
    data[2] = 0;
    data[3] = INT64_MIN;
    REQUIRE(t.str() == "tensor([    9007199254740993,             -1234567,                    0,\n"
                       "        -9223372036854775808], shape=[4], dtype=int64, device=cpu)");
    REQUIRE(to(reshape(arange(1000000, 1000004), {2, 2}), DType::Int64).str() ==
            "tensor([[1000000, 1000001],\n"
            "        [1000002, 1000003]], shape=[2,2], dtype=int64, device=cpu)");
    Tensor scalar = to(full({}, 1234567.0), DType::Int64);
    REQUIRE(scalar.str() == "tensor(1234567, shape=[], dtype=int64, device=cpu)");
}
