// Writes through overlapping memory, wrapped sizes and out-of-storage views used to give wrong
// numbers or crash: each is now either computed right or refused with the op and the shapes.
#include <vector>

#include "core/autograd.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {
const TensorOptions f64 = TensorOptions{}.with_dtype(DType::Float64);
const TensorOptions i64 = TensorOptions{}.with_dtype(DType::Int64);
constexpr int64_t kHuge = int64_t{1} << 32;
}  // namespace

TEST_CASE("copy_ from a view that overlaps dst copies the values as they were before the copy", "[core][copy]") {
    // x[1:] = x[:-1] shifts right (reading a snapshot), as numpy's and PyTorch's results would be.
    Tensor x = arange(0, 6, 1, f64);
    copy_(narrow(x, 0, 1, 5), narrow(x, 0, 0, 5));
    REQUIRE(x.to_vector() == std::vector<double>{0, 0, 1, 2, 3, 4});
    Tensor y = arange(0, 6, 1, f64);
    copy_(narrow(y, 0, 0, 5), narrow(y, 0, 1, 5));
    REQUIRE(y.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 5});
    // x = x^T in place: the transpose of the original.
    Tensor m = reshape(arange(0, 9, 1, f64), {3, 3});
    const std::vector<double> expected = contiguous(transpose(m, 0, 1)).to_vector();
    copy_(m, transpose(m, 0, 1));
    REQUIRE(m.to_vector() == expected);
}

TEST_CASE("copy_ into an expanded tensor is refused", "[core][copy]") {
    Tensor b = zeros({1}, f64);
    REQUIRE_THROWS_WITH(copy_(expand(b, {3}), arange(1, 4, 1, f64)),
                        Catch::StartsWith("copy_: dst [3] with strides [0] has elements that share memory"));
    REQUIRE(b.item() == 0.0);
}

TEST_CASE("a gradient set to an expanded tensor accumulates as a sum, not through the shared element",
          "[core][autograd]") {
    Tensor w = zeros({3}, TensorOptions(f64).with_requires_grad(true));
    w.set_grad(expand(zeros({1}, f64), {3}));
    sum(mul(w, arange(1, 4, 1, f64))).backward();
    REQUIRE(w.grad().to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("shapes whose element count overflows int64 are refused", "[core][shape]") {
    REQUIRE_THROWS_WITH(zeros({kHuge, kHuge}, f64), Catch::Contains("overflows int64"));
    REQUIRE_THROWS_WITH(zeros({int64_t{1} << 61}, f64), Catch::Contains("needs more than 2^63 bytes"));
    REQUIRE_THROWS_WITH(reshape(zeros({0}, f64), {kHuge, kHuge}), Catch::Contains("overflows int64"));
    REQUIRE_THROWS_WITH(expand(zeros({1, 1}, f64), {kHuge, kHuge}), Catch::Contains("overflows int64"));
    REQUIRE_THROWS_WITH(expand(ones({1}, f64), {-2}), Catch::StartsWith("expand: invalid size -2 at dim 0"));
}

TEST_CASE("as_strided refuses a view outside its storage", "[core][shape]") {
    Tensor x = ones({2}, f64);
    REQUIRE_THROWS_WITH(x.as_strided({4}, {1}, 1000000), Catch::Contains("reaches element 1000003 of a storage of 2"));
    REQUIRE_THROWS_WITH(x.as_strided({3}, {1}, 0), Catch::Contains("reaches element 2 of a storage of 2"));
    REQUIRE_THROWS_WITH(x.as_strided({2}, {1}, -1), Catch::StartsWith("as_strided:"));
    REQUIRE_THROWS_WITH(x.as_strided({2}, {-1}, 1), Catch::StartsWith("as_strided: negative size or stride"));
    REQUIRE_THROWS_WITH(x.as_strided({2, 2}, {1}, 0), Catch::StartsWith("as_strided:"));
    REQUIRE(x.as_strided({2, 2}, {0, 1}, 0).numel() == 4);   // in bounds, overlapping reads are fine
    REQUIRE(x.as_strided({0, 5}, {100, 1}, 2).numel() == 0);  // empty views reach nothing
}

TEST_CASE("int64 tensors cannot require grad, and float ops on them name the op", "[core][autograd]") {
    Tensor ids = arange(1, 4, 1, i64);
    REQUIRE_THROWS_WITH(ids.requires_grad_(true),
                        "requires_grad_: only floating-point tensors can require gradients, got int64 [3]");
    REQUIRE_THROWS_WITH(arange(1, 4, 1, TensorOptions(i64).with_requires_grad(true)),
                        Catch::StartsWith("requires_grad_: only floating-point tensors"));
    REQUIRE_NOTHROW(ids.requires_grad_(false));
    const std::string tail = ": expects a floating-point tensor, got int64 of shape [3]; convert it with to(dtype)";
    REQUIRE_THROWS_WITH(add(ids, ids), "add" + tail);
    REQUIRE_THROWS_WITH(eq(ids, ids), "eq" + tail);
    REQUIRE_THROWS_WITH(mse_loss(ids, ids), "mse_loss" + tail);
    REQUIRE_THROWS_WITH(isfinite(ids), "isfinite" + tail);
    REQUIRE_THROWS_WITH(matmul(ids, ids), "matmul" + tail);
}
