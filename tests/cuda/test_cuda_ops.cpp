// Every op on CUDA against the CPU (float32, 1e-5 relative), and gradcheck on CUDA in float64.
#include <catch2/catch.hpp>

#include "core/cuda.h"
#include "core/storage.h"
#include "ops/gradcheck.h"
#include "tests/cuda/parity.h"

using namespace latte;
using test::kGpu;

namespace {

Tensor randn32(const Shape& shape, uint64_t seed, bool requires_grad = true) {
    Generator gen(seed);
    return randn(shape, gen, TensorOptions{}.with_requires_grad(requires_grad));
}

Tensor positive32(const Shape& shape, uint64_t seed) {
    Generator gen(seed);
    return rand(shape, gen, TensorOptions{}.with_requires_grad(true), 0.5, 2.0);
}

}  // namespace

TEST_CASE("tensors move to the GPU and back unchanged, and memory is counted per device", "[cuda]") {
    Tensor x = randn32({3, 5, 7}, 1, false);
    const MemoryStats before = memory_stats(kGpu);
    Tensor g = to(x, kGpu);
    REQUIRE(g.device() == kGpu);
    REQUIRE(memory_stats(kGpu).live_bytes - before.live_bytes == 3 * 5 * 7 * 4);
    REQUIRE(to(g, Device::cpu()).to_vector() == x.to_vector());
    REQUIRE(to(permute(g, {2, 0, 1}), Device::cpu()).to_vector() == contiguous(permute(x, {2, 0, 1})).to_vector());
    REQUIRE(to(to(g, DType::Float64), Device::cpu()).to_vector() == x.to_vector());
    g = Tensor();
    REQUIRE(memory_stats(kGpu).live_bytes == before.live_bytes);
    REQUIRE(memory_stats(kGpu).cached_bytes > 0);  // the block is kept for reuse, not cudaFree'd
    empty_cache(kGpu);
    REQUIRE(memory_stats(kGpu).cached_bytes == 0);
}

TEST_CASE("random fills on the GPU give the CPU's numbers", "[cuda]") {
    for (DType dtype : {DType::Float64, DType::Float32}) {
        Generator on_cpu(11), on_gpu(11);
        const TensorOptions cpu = TensorOptions{}.with_dtype(dtype), gpu = TensorOptions(cpu).with_device(kGpu);
        // Odd sizes exercise the spare normal carried from one fill to the next.
        for (const Shape& shape : {Shape{3}, Shape{1001, 7}, Shape{5}}) {
            CAPTURE(dtype_name(dtype), shape_str(shape));
            const Tensor a = randn(shape, on_cpu, cpu, 0.5, 2.0), b = randn(shape, on_gpu, gpu, 0.5, 2.0);
            CHECK(relative_error(to(b, Device::cpu()), a) < 1e-12);
            const Tensor u = rand(shape, on_cpu, cpu, -1.0, 1.0), w = rand(shape, on_gpu, gpu, -1.0, 1.0);
            CHECK(relative_error(to(w, Device::cpu()), u) < 1e-12);
        }
        CHECK(on_cpu.normal() == on_gpu.normal());
    }
}

TEST_CASE("ops refuse operands on different devices instead of copying", "[cuda]") {
    Tensor a = randn32({2, 3}, 2, false), b = to(a, kGpu);
    // A latte::Error each, never a crash or a silent copy.
    CHECK_THROWS_AS(add(a, b), Error);
    CHECK_THROWS_AS(add(b, a), Error);
    CHECK_THROWS_AS(mul(b, a), Error);
    CHECK_THROWS_AS(matmul(a, transpose(b, 0, 1)), Error);
    CHECK_THROWS_AS(cat({a, b}, 0), Error);
    CHECK_THROWS_AS(where(gt(b, b), a, b), Error);
    CHECK_THROWS_AS(mse_loss(a, b), Error);
    CHECK_THROWS_AS(copy_(b, a), Error);
    REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("cuda:0"));
    REQUIRE_THROWS_WITH(matmul(a, transpose(b, 0, 1)), Catch::Contains("cuda:0"));
    REQUIRE_THROWS_WITH(svd(b), Catch::Contains("svd: runs on the CPU"));
    REQUIRE_THROWS_WITH(to(a, Device::cuda(99)), Catch::Contains("device cuda:99 does not exist"));
}

TEST_CASE("every op's forward and gradient on CUDA equal the CPU's", "[cuda][memcheck]") {
    const Tensor a = randn32({4, 6}, 10), b = randn32({4, 6}, 11), row = randn32({6}, 12);
    const Tensor p = positive32({4, 6}, 13), q = positive32({4, 6}, 14);
    const Tensor m1 = randn32({5, 7}, 15), m2 = randn32({7, 3}, 16);
    const Tensor b1 = randn32({2, 3, 5, 7}, 17), b2 = randn32({3, 7, 4}, 18), big = randn32({3, 40, 300}, 19);
    using test::Fn;
    const std::vector<std::tuple<const char*, Fn, std::vector<Tensor>>> cases = {
        {"add broadcast", [](const auto& v) { return add(v[0], v[1]); }, {a, row}},
        {"sub", [](const auto& v) { return sub(v[0], v[1]); }, {a, b}},
        {"mul", [](const auto& v) { return mul(v[0], v[1]); }, {a, b}},
        {"div", [](const auto& v) { return div(v[0], v[1]); }, {a, p}},
        {"scalar ops", [](const auto& v) { return rsub(0.5, rdiv(2.0, add(mul(v[0], 3.0), 1.5))); }, {p}},
        {"neg exp", [](const auto& v) { return exp(neg(v[0])); }, {a}},
        {"log sqrt", [](const auto& v) { return add(log(v[0]), sqrt(v[1])); }, {p, q}},
        {"pow", [](const auto& v) { return pow(v[0], 2.5); }, {p}},
        {"tanh relu", [](const auto& v) { return add(tanh(v[0]), relu(v[1])); }, {a, b}},
        {"sum all", [](const auto& v) { return sum(v[0]); }, {big}},
        {"sum dims keepdim", [](const auto& v) { return sum(v[0], {0, 2}, true); }, {big}},
        {"mean last", [](const auto& v) { return mean(v[0], {-1}); }, {big}},
        {"max dim", [](const auto& v) { return max(v[0], 1).values; }, {big}},
        {"amax dim", [](const auto& v) { return amax(v[0], 1); }, {big}},
        {"max dim indices", [](const auto& v) { return to(max(v[0], 1).indices, v[0].dtype()); }, {big}},
        {"max all", [](const auto& v) { return max(v[0]); }, {a}},
        {"views then contiguous", [](const auto& v) { return contiguous(permute(reshape(v[0], {2, 2, 6}), {2, 0, 1})); }, {a}},
        {"expand narrow slice", [](const auto& v) { return slice(narrow(expand(v[0], {3, 6}), 1, 1, 4), 1, 0, 4, 2); }, {row}},
        {"cat stack repeat", [](const auto& v) { return cat({stack({v[0], v[1]}, 1), repeat(unsqueeze(v[0], 1), {1, 2, 1})}, 2); }, {a, b}},
        {"select squeeze", [](const auto& v) { return squeeze(select(v[0], 2, 3)); }, {b1}},
        {"matmul 2-D", [](const auto& v) { return matmul(v[0], v[1]); }, {m1, m2}},
        {"matmul transposed", [](const auto& v) { return matmul(transpose(v[1], 0, 1), transpose(v[0], 0, 1)); }, {m1, m2}},
        {"matmul batched broadcast", [](const auto& v) { return matmul(v[0], v[1]); }, {b1, b2}},
        {"matmul shared weight", [](const auto& v) { return matmul(v[0], v[1]); }, {b1, m2}},
        {"softmax", [](const auto& v) { return softmax(v[0], -1); }, {big}},
        {"softmax middle dim", [](const auto& v) { return softmax(v[0], 1); }, {big}},
        {"log_softmax", [](const auto& v) { return log_softmax(v[0], -1); }, {big}},
        {"mse_loss", [](const auto& v) { return mse_loss(v[0], v[1]); }, {a, b}},
        {"to float64", [](const auto& v) { return to(mul(to(v[0], DType::Float64), 2.0), DType::Float32); }, {a}},
    };
    for (const auto& [name, f, inputs] : cases) {
        SECTION(name) { test::require_parity(f, inputs, 1e-5); }
    }
    SECTION("comparisons (no gradient)") {
        Tensor x = randn32({50}, 20, false), y = randn32({50}, 21, false);
        Tensor gx = to(x, kGpu), gy = to(y, kGpu);
        CHECK(to(gt(gx, gy), Device::cpu()).to_vector() == gt(x, y).to_vector());
        CHECK(to(eq(gx, gx), Device::cpu()).to_vector() == eq(x, x).to_vector());
    }
    SECTION("large reductions and softmax rows") {
        for (const Shape& shape : {Shape{1, 1 << 20}, Shape{1 << 14, 3}, Shape{7, 5000}}) {
            CAPTURE(shape_str(shape));
            const test::ParityResult r =
                test::parity([](const auto& v) { return add(sum(v[0], {1}), max(v[0], 1).values); }, {randn32(shape, 22)});
            CHECK(r.output_error < 1e-5);
            const test::ParityResult s = test::parity([](const auto& v) { return softmax(v[0], 1); }, {randn32(shape, 23)});
            CHECK(s.output_error < 1e-5);
            REQUIRE(s.gradient_errors.size() == 1);
            CHECK(s.gradient_errors[0] < 1e-5);
        }
    }
}

TEST_CASE("gradcheck passes on CUDA in float64", "[cuda][gradcheck]") {
    Generator gen(30);
    const TensorOptions f64 = TensorOptions{}.with_dtype(DType::Float64).with_device(kGpu).with_requires_grad(true);
    Tensor a = randn({2, 3, 4}, gen, f64), b = randn({4, 5}, gen, f64);
    auto product_softmax = [](const std::vector<Tensor>& v) { return log_softmax(matmul(tanh(v[0]), v[1]), -1); };
    const GradcheckResult r = gradcheck(product_softmax, {a, b});
    INFO(r.message);
    REQUIRE(r.ok);
    auto reductions = [](const std::vector<Tensor>& v) { return add(mean(v[0], {1}), max(v[0], 1).values); };
    const GradcheckResult s = gradcheck(reductions, {a});
    INFO(s.message);
    REQUIRE(s.ok);
}

namespace {
// Turns TF32 on for a scope and off again, even when an assertion throws.
struct Tf32On {
    Tf32On() { cuda::set_allow_tf32(true); }
    ~Tf32On() { cuda::set_allow_tf32(false); }
};
}  // namespace

TEST_CASE("the TF32 switch is off by default and changes float32 matmuls only", "[cuda]") {
    REQUIRE_FALSE(cuda::allow_tf32());
    Tensor x = randn32({256, 1024}, 40, false), w = randn32({1024, 256}, 41, false);
    const Tensor exact = matmul(x, w);
    const Tensor gx = to(x, kGpu), gw = to(w, kGpu), gx64 = to(gx, DType::Float64), gw64 = to(gw, DType::Float64);
    const Tensor strict = to(matmul(gx, gw), Device::cpu()), strict64 = to(matmul(gx64, gw64), Device::cpu());
    // The pointer-array path too: batches of permuted heads are not evenly spaced in memory.
    const Tensor heads = permute(reshape(gx, {4, 64, 4, 256}), {0, 2, 1, 3});  // (4, 4, 64, 256)
    auto scores = [&heads] { return to(matmul(heads, transpose(heads, -1, -2)), Device::cpu()); };
    const Tensor strict_batched = scores();
    Tensor loose, loose64, loose_batched;
    {
        Tf32On on;
        REQUIRE(cuda::allow_tf32());
        loose = to(matmul(gx, gw), Device::cpu());
        loose64 = to(matmul(gx64, gw64), Device::cpu());
        loose_batched = scores();
    }
    REQUIRE_FALSE(cuda::allow_tf32());
    const double strict_error = relative_error(strict, exact), loose_error = relative_error(loose, exact);
    CAPTURE(strict_error, loose_error);
    CHECK(strict_error < 1e-5);
    CHECK(loose_error < 1e-2);          // TF32 keeps 10 mantissa bits...
    CHECK(loose_error > 10 * strict_error);  // ...and does change the result: the switch reaches cuBLAS
    CHECK(relative_error(loose_batched, strict_batched) > 1e-5);
    CHECK(loose64.to_vector<double>() == strict64.to_vector<double>());  // float64 never uses TF32
    // Off again: float32 is back to the exact path.
    CHECK(to(matmul(gx, gw), Device::cpu()).to_vector() == strict.to_vector());
}

TEST_CASE("the language-model ops' forward and gradient on CUDA equal the CPU's", "[cuda][memcheck]") {
    const TensorOptions i64 = TensorOptions{}.with_dtype(DType::Int64);
    const Tensor table = randn32({50, 24}, 50), x = randn32({3, 7, 24}, 51), w = randn32({24}, 52),
                 b = randn32({24}, 53), logits = randn32({21, 300}, 54), wide = randn32({5, 3000}, 55),
                 wide_w = randn32({3000}, 56), q = randn32({2, 5, 3, 16}, 57), a = randn32({4, 6}, 58),
                 c = randn32({4, 6}, 59);
    // Repeated ids (the scatter-add's atomics) and ignored targets.
    std::vector<double> idv, tv;
    for (int i = 0; i < 21; ++i) idv.push_back((i * 7) % 13);
    for (int i = 0; i < 21; ++i) tv.push_back(i % 5 == 2 ? -100 : (i * 37) % 300);
    const Tensor ids = from_vector(idv, {3, 7}, i64), targets = from_vector(tv, {21}, i64);
    using test::Fn;
    const std::vector<std::tuple<const char*, Fn, std::vector<Tensor>>> cases = {
        {"embedding", [ids](const auto& v) { return embedding(v[0], to(ids, v[0].device())); }, {table}},
        {"cross_entropy mean", [targets](const auto& v) { return cross_entropy(v[0], to(targets, v[0].device())); }, {logits}},
        {"cross_entropy none", [targets](const auto& v) {
             return cross_entropy(v[0], to(targets, v[0].device()), -100, Reduction::None); }, {logits}},
        {"rms_norm", [](const auto& v) { return rms_norm(v[0], v[1]); }, {x, w}},
        {"layer_norm", [](const auto& v) { return layer_norm(v[0], v[1], v[2]); }, {x, w, b}},
        {"layer_norm wide rows", [](const auto& v) { return layer_norm(v[0], v[1], Tensor()); }, {wide, wide_w}},
        {"rms_norm wide rows", [](const auto& v) { return rms_norm(v[0], v[1]); }, {wide, wide_w}},
        {"sigmoid silu", [](const auto& v) { return add(sigmoid(v[0]), silu(v[1])); }, {a, c}},
        {"gelu erf and tanh", [](const auto& v) { return add(gelu(v[0]), gelu(v[1], true)); }, {a, c}},
        {"abs clamp", [](const auto& v) { return add(abs(v[0]), clamp(v[1], -0.5, 0.7)); }, {a, c}},
        {"where", [](const auto& v) { return where(gt(v[0], v[1]), v[0], mul(v[1], 2.0)); }, {a, c}},
        {"rope", [](const auto& v) { return rope(v[0], 4); }, {q}},
        {"dropout", [](const auto& v) {
             Generator gen(60);
             return dropout(v[0], 0.3, gen); }, {x}},
    };
    for (const auto& [name, f, inputs] : cases) {
        SECTION(name) { test::require_parity(f, inputs, 1e-5); }
    }
    SECTION("argmax (no gradient)") {
        const Tensor big = randn32({3, 40, 300}, 61, false);
        CHECK(to(argmax(to(big, kGpu), 2), Device::cpu()).to_vector<int64_t>() == argmax(big, 2).to_vector<int64_t>());
    }
    SECTION("bad ids and targets are caught on the host, before a kernel") {
        REQUIRE_THROWS_WITH(embedding(to(table, kGpu), to(from_vector(std::vector<double>{3, 50}, {2}, i64), kGpu)),
                            "embedding: id 50 at index [1] is out of range [0, 50) for weight [50,24]");
        REQUIRE_THROWS_WITH(cross_entropy(to(logits, kGpu), to(full({21}, 300.0, i64), kGpu)),
                            "cross_entropy: target 300 at index [0] is out of range [0, 300) for logits [21,300] "
                            "(ignore_index -100)");
    }
}

TEST_CASE("the language-model ops pass gradcheck on CUDA in float64", "[cuda][gradcheck]") {
    Generator gen(70);
    const TensorOptions f64 = TensorOptions{}.with_dtype(DType::Float64).with_device(kGpu).with_requires_grad(true);
    const TensorOptions i64 = TensorOptions{}.with_dtype(DType::Int64).with_device(kGpu);
    Tensor table = randn({6, 4}, gen, f64), x = randn({3, 5}, gen, f64), w = randn({5}, gen, f64),
           b = randn({5}, gen, f64), q = randn({1, 3, 2, 4}, gen, f64);
    const Tensor ids = from_vector(std::vector<double>{1, 5, 1}, {3}, i64);
    const Tensor targets = from_vector(std::vector<double>{4, -100, 0}, {3}, i64);
    auto check = [](const GradcheckFn& f, const std::vector<Tensor>& inputs) {
        const GradcheckResult r = gradcheck(f, inputs);
        INFO(r.message);
        CHECK(r.ok);
    };
    check([ids](const std::vector<Tensor>& v) { return embedding(v[0], ids); }, {table});
    check([targets](const std::vector<Tensor>& v) { return cross_entropy(v[0], targets); }, {x});
    check([](const std::vector<Tensor>& v) { return rms_norm(v[0], v[1], 1e-3); }, {x, w});
    check([](const std::vector<Tensor>& v) { return layer_norm(v[0], v[1], v[2], 1e-3); }, {x, w, b});
    check([](const std::vector<Tensor>& v) { return add(silu(v[0]), gelu(v[0])); }, {x});
    check([](const std::vector<Tensor>& v) { return rope(v[0], 2); }, {q});
}
