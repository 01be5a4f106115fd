#include <cmath>
#include <limits>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

Tensor eye(int64_t n, DType dtype) {
    std::vector<double> v(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i * n + i)] = 1.0;
    return from_vector(v, {n, n}, TensorOptions{}.with_dtype(dtype));
}

// U diag(S) Vh, by broadcasting S over U's columns.
Tensor reconstruct(const SVD& f) { return matmul(mul(f.U, unsqueeze(f.S, 0)), f.Vh); }

}  // namespace

TEST_CASE("svd of a matrix with known singular values", "[ops][linalg]") {
    // A^T A = [[25, 20], [20, 25]] has eigenvalues 45 and 5, so S = (3 sqrt 5, sqrt 5).
    Tensor a = from_vector(std::vector<double>{3, 0, 4, 5}, {2, 2}, test::f64());
    SVD f = svd(a);
    REQUIRE(f.S.to_vector()[0] == Approx(3 * std::sqrt(5.0)).epsilon(1e-14));
    REQUIRE(f.S.to_vector()[1] == Approx(std::sqrt(5.0)).epsilon(1e-14));
    LATTE_REQUIRE_CLOSE(reconstruct(f), a, 0, 1e-14);
    // A diagonal matrix: the singular values are |d| sorted descending.
    Tensor d = from_vector(std::vector<double>{0, 0, 0, 0, -7, 0, 0, 0, 2}, {3, 3}, test::f64());
    REQUIRE(svd(d).S.to_vector() == std::vector<double>{7, 2, 0});
}

TEST_CASE("svd reconstructs tall, wide and square matrices with orthonormal factors", "[ops][linalg]") {
    for (DType dtype : {DType::Float64, DType::Float32}) {
        const double tol = dtype == DType::Float64 ? 1e-12 : 2e-5;
        for (Shape shape : {Shape{7, 3}, Shape{3, 7}, Shape{6, 6}}) {
            CAPTURE(dtype_name(dtype), shape_str(shape));
            Generator gen(shape[0] * 10 + shape[1]);
            Tensor a = randn(shape, gen, TensorOptions{}.with_dtype(dtype));
            SVD f = svd(a);
            const int64_t k = std::min(shape[0], shape[1]);
            REQUIRE(f.U.shape() == Shape{shape[0], k});
            REQUIRE(f.S.shape() == Shape{k});
            REQUIRE(f.Vh.shape() == Shape{k, shape[1]});
            LATTE_REQUIRE_CLOSE(reconstruct(f), a, 0, tol);
            LATTE_REQUIRE_CLOSE(matmul(transpose(f.U, 0, 1), f.U), eye(k, dtype), 0, tol);
            LATTE_REQUIRE_CLOSE(matmul(f.Vh, transpose(f.Vh, 0, 1)), eye(k, dtype), 0, tol);
            const auto s = f.S.to_vector();
            for (size_t i = 1; i < s.size(); ++i) REQUIRE(s[i - 1] >= s[i]);
        }
    }
}

TEST_CASE("matrix_rank counts singular values above the tolerance", "[ops][linalg]") {
    Tensor a = test::randn64({9, 2}, 3, false), b = test::randn64({2, 5}, 4, false);
    REQUIRE(matrix_rank(matmul(a, b)) == 2);
    REQUIRE(matrix_rank(test::randn64({4, 6}, 5, false)) == 4);
    REQUIRE(matrix_rank(zeros({3, 3}, test::f64())) == 0);
    // A tiny perturbation counts only when the tolerance is below it.
    Tensor nearly = add(matmul(a, b), mul(test::randn64({9, 5}, 6, false), 1e-9));
    REQUIRE(matrix_rank(nearly) == 5);
    REQUIRE(matrix_rank(nearly, 1e-6) == 2);
}

TEST_CASE("svd rejects what it cannot factor", "[ops][linalg][errors]") {
    REQUIRE_THROWS_WITH(svd(zeros({2, 2, 2})), "svd: needs a 2-D matrix, got shape [2,2,2]");
    REQUIRE_THROWS_WITH(svd(test::randn64({3, 3}, 1, true)),
                        "svd: not differentiable, got a [3,3] tensor that requires grad; detach() it or use NoGradGuard");
    {
        NoGradGuard no_grad;
        REQUIRE(svd(test::randn64({3, 3}, 1, true)).S.shape() == Shape{3});
    }
    Tensor bad = from_vector(std::vector<double>{1, std::numeric_limits<double>::quiet_NaN(), 0, 1}, {2, 2}, test::f64());
    REQUIRE_THROWS_WITH(svd(bad), "svd: the [2,2] matrix holds NaN or Inf");
    REQUIRE_THROWS_WITH(svd(zeros({0, 3})), "svd: empty matrix of shape [0,3]");
}
