// autocast(bf16) (core/autocast.h): float32 matmuls, forward and backward, equal float64 products
// of the same operands rounded to bf16, up to float32's accumulation; float64 is untouched; the
// mode nests and belongs to its thread; a device without bf16 products refuses, naming the op.
// The single product runs on oneDNN, a batch of small products on the rounded float32 path
// (backends/cpu/autocast_gemm.cpp): both are checked.
#include <cmath>
#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "backends/cpu/bf16_gemm.h"
#include "core/autocast.h"
#include "core/factory.h"
#include "core/random.h"
#include "ops/ops.h"
#include "tests/support/bf16_reference.h"

using namespace latte;
using autocast::Precision;

namespace {

double bf16(float x) { return test::round_bf16(x); }

bool have_bf16() { return test::cpu_runs_bf16("autocast(bf16) products"); }

// The worst |got - want| / bound over (batch, m, n), where want is the float64 product of the
// bf16-rounded a (batch, m, k) and b (batch or 1, k, n) and bound is k * 2^-23 times the sum of
// |terms| (float32 accumulation of k terms) plus a tiny absolute floor.
double worst_error(const Tensor& got, const Tensor& a, const Tensor& b) {
    const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), gv = got.to_vector<float>();
    const int64_t batches = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
    const bool shared = b.size(0) == 1;
    double worst = 0;
    for (int64_t p = 0; p < batches; ++p)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double want = 0, magnitude = 0;
                for (int64_t l = 0; l < k; ++l) {
                    const double term = bf16(av[size_t((p * m + i) * k + l)]) *
                                        bf16(bv[size_t(((shared ? 0 : p) * k + l) * n + j)]);
                    want += term;
                    magnitude += std::fabs(term);
                }
                const double bound = double(k) * std::ldexp(1.0, -23) * magnitude + 1e-30;
                worst = std::max(worst, std::fabs(gv[size_t((p * m + i) * n + j)] - want) / bound);
            }
    return worst;
}

}  // namespace

TEST_CASE("autocast(bf16) matmul equals the float64 product of bf16-rounded operands", "[autocast]") {
    if (!have_bf16()) return;
    Generator gen(11);
    SECTION("one product (oneDNN)") {
        const Tensor a = randn({1, 37, 70}, gen), b = randn({1, 70, 29}, gen);
        Tensor out;
        {
            autocast::Guard guard(Precision::BFloat16);
            out = matmul(a, b);
        }
        CHECK(out.dtype() == DType::Float32);
        CHECK(worst_error(out, a, b) <= 1.0);
        // The rounding happened: plain float32 differs by far more than its own accumulation error.
        CHECK(max(abs(sub(out, matmul(a, b)))).item() > 1e-3);
    }
    SECTION("a batch of small products (rounded float32 path), and transposed operands") {
        const Tensor a = randn({6, 33, 16}, gen), bt = randn({6, 9, 16}, gen);
        const Tensor b = transpose(bt, 1, 2);  // (6, 16, 9), stored transposed
        Tensor out;
        {
            autocast::Guard guard;
            out = matmul(a, b);
        }
        CHECK(worst_error(out, a, contiguous(b)) <= 1.0);
    }
    SECTION("a weight shared by the batch (the Linear case, folded into one product)") {
        const Tensor x = randn({4, 25, 12}, gen), w = randn({12, 7}, gen);
        Tensor out;
        {
            autocast::Guard guard;
            out = matmul(x, w);
        }
        CHECK(worst_error(reshape(out, {1, 100, 7}), reshape(x, {1, 100, 12}), reshape(w, {1, 12, 7})) <= 1.0);
    }
}

TEST_CASE("autocast(bf16) backward products round the gradient and the saved operands", "[autocast]") {
    if (!have_bf16()) return;
    Generator gen(12);
    // loss = sum(matmul(a, b) * w): dL/da = w b^T, dL/db = a^T w, each a bf16 product.
    Tensor a = randn({1, 20, 31}, gen), b = randn({1, 31, 18}, gen);
    const Tensor w = randn({1, 20, 18}, gen);
    a.requires_grad_(true);
    b.requires_grad_(true);
    {
        autocast::Guard guard;
        Tensor loss = sum(mul(matmul(a, b), w));
        loss.backward();  // outside nothing changes: the node remembers bf16
    }
    CHECK(worst_error(a.grad(), w, contiguous(transpose(b.detach(), 1, 2))) <= 1.0);
    CHECK(worst_error(b.grad(), contiguous(transpose(a.detach(), 1, 2)), w) <= 1.0);
    // Against float32 gradients: within bf16's relative precision (2^-8) times the terms' sizes.
    Tensor a32 = a.detach().clone(), b32 = b.detach().clone();
    a32.requires_grad_(true);
    b32.requires_grad_(true);
    sum(mul(matmul(a32, b32), w)).backward();
    const double scale = max(abs(a32.grad())).item();
    CHECK(max(abs(sub(a.grad(), a32.grad()))).item() <= 0.05 * scale);
}

TEST_CASE("autocast leaves float64 alone, nests, and belongs to its thread", "[autocast]") {
    Generator gen(13);
    const Tensor a = randn({5, 6}, gen, TensorOptions{}.with_dtype(DType::Float64));
    const Tensor b = randn({6, 4}, gen, TensorOptions{}.with_dtype(DType::Float64));
    const Tensor plain = matmul(a, b);
    CHECK(autocast::current() == Precision::Float32);
    {
        autocast::Guard guard;
        CHECK(autocast::current() == Precision::BFloat16);
        CHECK(max(abs(sub(matmul(a, b), plain))).item() == 0.0);  // float64 products never change
        {
            autocast::Guard inner(Precision::Float32);
            CHECK(autocast::current() == Precision::Float32);
        }
        CHECK(autocast::current() == Precision::BFloat16);
        Precision other = Precision::BFloat16;
        std::thread([&] { other = autocast::current(); }).join();
        CHECK(other == Precision::Float32);
    }
    CHECK(autocast::current() == Precision::Float32);
    CHECK(autocast::parse_precision("bf16", "t") == Precision::BFloat16);
    CHECK_THROWS_WITH(autocast::parse_precision("fp16", "latte train: --precision"),
                      "latte train: --precision: the precision must be f32 or bf16, got 'fp16'");
}

TEST_CASE("autocast(bf16) on a device without bf16 products refuses, naming the op and why", "[autocast]") {
    cpu::detail::set_bf16_refusal_for_testing("this CPU has no bf16 (test)");
    const Tensor a = ones({3, 4}), b = ones({4, 2});
    bool threw = false;
    try {
        autocast::Guard guard;
        matmul(a, b);
    } catch (const Error& e) {
        threw = true;
        CHECK(std::string(e.what()) == "matmul of [3,4] by [4,2] on cpu under autocast(bf16): this CPU has no bf16 (test)");
    }
    cpu::detail::set_bf16_refusal_for_testing("");
    CHECK(threw);
    CHECK(max(abs(sub(matmul(a, b), full({3, 2}, 4.0)))).item() == 0.0);  // float32 without the guard
}
