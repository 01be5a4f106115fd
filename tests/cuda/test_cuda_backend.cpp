// The CUDA backend's own paths, each against the CPU or exact values: reductions split over many
// blocks, pointer-array batched gemm, uploads through the pinned staging ring, and tensors of more
// than 2^31 elements (64-bit indices in every kernel they touch).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "core/cuda.h"
#include "core/storage.h"
#include "tests/cuda/parity.h"

using namespace latte;
using test::kGpu;

namespace {

Tensor randn_on_cpu(const Shape& shape, uint64_t seed, DType dtype = DType::Float32) {
    Generator gen(seed);
    return randn(shape, gen, TensorOptions{}.with_dtype(dtype).with_requires_grad(true));
}

}  // namespace

TEST_CASE("reductions split over many blocks equal the CPU", "[cuda][reduce]") {
    using test::Fn;
    const Fn sum_all = [](const auto& v) { return sum(v[0]); };
    const Fn mse_to_zero = [](const auto& v) { return mse_loss(v[0], zeros_like(v[0])); };
    // (outer, size, inner) cases: one output over 16.7M elements (the large config's mse_loss),
    // few long rows, and columns whose reduced axis is long (a second pass over partials).
    const std::vector<std::tuple<const char*, Fn, Shape>> cases = {
        {"sum of 2^24", sum_all, {1 << 24}},
        {"mse_loss over 16x1024x1024", mse_to_zero, {16, 1024, 1024}},
        {"sum of odd length", [](const auto& v) { return sum(v[0]); }, {4097 * 3}},
        {"row sums of 3 long rows", [](const auto& v) { return sum(v[0], {1}); }, {3, 123457}},
        {"column sums of a tall matrix", [](const auto& v) { return sum(v[0], {0}); }, {100000, 3}},
        {"middle-axis sums", [](const auto& v) { return sum(v[0], {1}); }, {2, 9999, 33}},
        {"middle-axis max", [](const auto& v) { return amax(v[0], 1); }, {2, 9999, 33}},
        {"full max", [](const auto& v) { return max(v[0]); }, {1 << 22}},
        {"mean of columns", [](const auto& v) { return mean(v[0], {0}); }, {70000, 40}},
    };
    for (const auto& [name, f, shape] : cases) {
        CAPTURE(name, shape_str(shape));
        const test::ParityResult r = test::parity(f, {randn_on_cpu(shape, 80)});
        CHECK(r.output_error < 1e-5);
        for (double e : r.gradient_errors) CHECK(e < 1e-5);
    }
}

// Own test cases, not SECTIONs: Catch2 reruns a test case's whole body once per section.
TEST_CASE("a NaN anywhere in a long row reaches the multi-block reductions' result", "[cuda][reduce]") {
    std::vector<float> values(1 << 22, 1.0f);
    values[3000001] = std::numeric_limits<float>::quiet_NaN();
    const Tensor x = from_vector(values, {1 << 22}, TensorOptions{}.with_device(kGpu));
    CHECK(std::isnan(max(x).item()));
    CHECK(std::isnan(sum(x).item()));
    const std::vector<float> column_max = amax(reshape(x, {1024, 4096}), 0).to_vector<float>();
    CHECK(std::isnan(column_max[3000001 % 4096]));
    CHECK(column_max[0] == 1.0f);
}

TEST_CASE("multi-block float64 sums keep float64 precision", "[cuda][reduce]") {
    const Tensor x = randn_on_cpu({1 << 21}, 81, DType::Float64);
    const double cpu = sum(x).item(), gpu = sum(to(x.detach(), kGpu)).item();
    CHECK(std::fabs(gpu - cpu) <= 1e-12 * std::fabs(cpu) + 1e-9);
}

TEST_CASE("matmuls of batches that are not evenly spaced use one pointer-array call and equal the CPU",
          "[cuda][gemm]") {
    for (DType dtype : {DType::Float32, DType::Float64}) {
        CAPTURE(dtype_name(dtype));
        // (B, L, H, d) permuted to (B, H, L, d): batch (b, h) starts at b*L*H*d + h*d, not evenly spaced.
        const Tensor x = randn_on_cpu({3, 40, 5, 16}, 90, dtype), y = randn_on_cpu({3, 40, 5, 16}, 91, dtype);
        const test::ParityResult r = test::parity(
            [](const auto& v) {
                const Tensor q = permute(v[0], {0, 2, 1, 3}), k = permute(v[1], {0, 2, 1, 3});
                return matmul(softmax(matmul(q, transpose(k, -1, -2)), -1), k);
            },
            {x, y});
        CHECK(r.output_error < 1e-5);
        REQUIRE(r.gradient_errors.size() == 2);
        for (double e : r.gradient_errors) CHECK(e < 1e-5);
    }
}

TEST_CASE("host uploads through the staging ring arrive intact and in order", "[cuda][upload]") {
    const TensorOptions on_gpu = TensorOptions{}.with_device(kGpu);
    // More uploads than the ring has buffers, with no synchronisation between them: a buffer
    // reused before its copy ran would change the sum.
    Tensor total = zeros({1000}, on_gpu);
    std::vector<double> expected(1000, 0.0);
    for (int i = 0; i < 200; ++i) {
        std::vector<double> values(1000);
        for (int j = 0; j < 1000; ++j) values[static_cast<size_t>(j)] = double((i * 7919 + j * 104729) % 1000);
        for (int j = 0; j < 1000; ++j) expected[static_cast<size_t>(j)] += values[static_cast<size_t>(j)];
        total = add(total, from_vector(values, {1000}, on_gpu));
    }
    CHECK(to(total, Device::cpu()).to_vector<double>() == std::vector<double>(expected.begin(), expected.end()));
    // Larger than the ring's buffers (4 MiB): it goes in pieces (4 + 4 + 4 MiB), twice in a row
    // with the host vector rewritten in between, so a piece copied late would show.
    std::vector<float> big(3 << 20);
    for (size_t i = 0; i < big.size(); ++i) big[i] = float(i % 4099);
    const Tensor first = from_vector(big, {int64_t(big.size())}, on_gpu);
    const std::vector<float> first_values = big;
    for (float& v : big) v = -v;
    const Tensor second = from_vector(big, {int64_t(big.size())}, on_gpu);
    CHECK(first.to_vector<float>() == first_values);
    CHECK(second.to_vector<float>() == big);
}

TEST_CASE("tensors of more than 2^31 elements fill copy and sum on CUDA", "[cuda][large]") {
    const int64_t cols = (int64_t(1) << 30) + 8, n = 3 * cols;  // 3.2e9 float32, 12 GiB per tensor
    REQUIRE(n > (int64_t(1) << 31));
    const TensorOptions on_gpu = TensorOptions{}.with_device(kGpu);
    {
        Tensor a = full({n}, 0.5, on_gpu);  // fill kernel
        copy_(narrow(a, 0, n - 3, 3), from_vector(std::vector<double>{1, 2, 3}, {3}, on_gpu));
        Tensor b = Tensor::empty({n}, on_gpu);
        copy_(b, a);  // copy kernel
        a = Tensor();
        // Elements past 2^31, read back through views with offsets past 2^31.
        auto read = [](const Tensor& view) { return to(view, Device::cpu()).to_vector<float>(); };
        CHECK(read(narrow(b, 0, n - 4, 4)) == std::vector<float>{0.5f, 1.0f, 2.0f, 3.0f});
        CHECK(read(narrow(b, 0, (int64_t(1) << 31) + 1, 2)) == std::vector<float>{0.5f, 0.5f});
        const double expected = 0.5 * double(n - 3) + 6.0;
        CHECK(sum(b).item() == Approx(expected).epsilon(1e-6));
        CHECK(max(b).item() == 3.0);
        const Tensor matrix = reshape(b, {3, cols});
        const std::vector<double> rows = to(sum(matrix, {1}), Device::cpu()).to_vector<double>();
        REQUIRE(rows.size() == 3);
        CHECK(rows[0] == Approx(0.5 * double(cols)).epsilon(1e-6));
        CHECK(rows[1] == Approx(0.5 * double(cols)).epsilon(1e-6));
        CHECK(rows[2] == Approx(0.5 * double(cols - 3) + 6.0).epsilon(1e-6));
        const Tensor columns = sum(matrix, {0});  // (cols): 1.5, and 2, 3, 4 in the last three
        CHECK(read(narrow(columns, 0, cols - 4, 4)) == std::vector<float>{1.5f, 2.0f, 3.0f, 4.0f});
    }
    empty_cache(kGpu);
}
