#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

// Independent reference: triple loop over contiguous float64 copies, batch dims broadcast by index.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
    const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
    const Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                         Shape(b.shape().begin(), b.shape().end() - 2), "naive");
    Shape sa = batch, sb = batch;
    sa.insert(sa.end(), {m, k});
    sb.insert(sb.end(), {k, n});
    const auto va = contiguous(expand(a.detach(), sa)).to_vector();
    const auto vb = contiguous(expand(b.detach(), sb)).to_vector();
    const int64_t count = shape_numel(batch);
    std::vector<double> out(static_cast<size_t>(count * m * n), 0.0);
    for (int64_t p = 0; p < count; ++p)
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double acc = 0;
                for (int64_t t = 0; t < k; ++t)
                    acc += va[static_cast<size_t>(p * m * k + i * k + t)] * vb[static_cast<size_t>(p * k * n + t * n + j)];
                out[static_cast<size_t>(p * m * n + i * n + j)] = acc;
            }
    Shape shape = batch;
    shape.insert(shape.end(), {m, n});
    return from_vector(out, shape, test::f64());
}

}  // namespace

TEST_CASE("matmul matches a triple loop for 2-D, batched and broadcast operands", "[ops][matmul]") {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{3, 4}, {4, 5}},             // plain
        {{2, 3, 4}, {2, 4, 5}},       // batched
        {{2, 3, 4}, {4, 5}},          // shared right operand (folded into one gemm)
        {{4, 5}, {2, 5, 3}},          // shared left operand
        {{2, 1, 3, 4}, {1, 3, 4, 2}}, // broadcast batch dims
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        Tensor a = test::randn64(cases[i].first, 100 + i);
        Tensor b = test::randn64(cases[i].second, 200 + i);
        INFO("case " << i);
        LATTE_REQUIRE_CLOSE(matmul(a, b), naive_matmul(a, b), 1e-12, 1e-12);
        LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); }, {a, b});
        LATTE_REQUIRE_CLOSE(to(matmul(to(a.detach(), DType::Float32), to(b.detach(), DType::Float32)), DType::Float64),
                            matmul(a.detach(), b.detach()), 1e-5, 1e-5);
    }
}

TEST_CASE("matmul handles transposed, sliced and expanded views", "[ops][matmul]") {
    Tensor a = test::randn64({4, 3}, 1), b = test::randn64({5, 4}, 2);
    // a^T @ b^T with both operands transposed views (passed to BLAS as transposes, no copy).
    LATTE_REQUIRE_CLOSE(matmul(transpose(a, 0, 1), transpose(b, 0, 1)),
                        naive_matmul(contiguous(transpose(a, 0, 1)), contiguous(transpose(b, 0, 1))), 1e-12, 1e-12);
    // A strided slice (every other column) needs a copy; an expanded batch stays stride 0.
    Tensor wide = test::randn64({3, 8}, 3);
    Tensor sliced = slice(wide, 1, 0, 8, 2);
    LATTE_REQUIRE_CLOSE(matmul(sliced, a), naive_matmul(contiguous(sliced), a), 1e-12, 1e-12);
    Tensor q = test::randn64({2, 3, 4, 5}, 4);
    Tensor k = test::randn64({2, 1, 6, 5}, 5);
    Tensor kt = transpose(expand(k, {2, 3, 6, 5}), -1, -2);  // the GQA broadcast pattern
    LATTE_REQUIRE_CLOSE(matmul(q, kt), naive_matmul(q, contiguous(kt)), 1e-12, 1e-12);
    LATTE_REQUIRE_GRADCHECK(
        [](const std::vector<Tensor>& v) { return matmul(v[0], transpose(expand(v[1], {2, 3, 6, 5}), -1, -2)); },
        {q, k});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return matmul(slice(v[0], 1, 0, 8, 2), v[1]); },
                            {wide, a});
    // One transposed matrix with a batch dim of 1 times a shared B: folded without a copy.
    Tensor single = test::randn64({1, 4, 3}, 6);
    Tensor w = test::randn64({4, 2}, 7);
    LATTE_REQUIRE_CLOSE(matmul(transpose(single, -1, -2), w), naive_matmul(contiguous(transpose(single, -1, -2)), w),
                        1e-12, 1e-12);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return matmul(transpose(v[0], -1, -2), v[1]); },
                            {single, w});
}

TEST_CASE("matmul promotes 1-D operands like torch.matmul", "[ops][matmul]") {
    Tensor v = test::randn64({4}, 7), m = test::randn64({4, 3}, 8), w = test::randn64({4}, 9);
    REQUIRE(matmul(v, m).shape() == Shape{3});
    REQUIRE(matmul(m.detach(), test::randn64({3}, 10)).shape() == Shape{4});
    REQUIRE(matmul(v, w).dim() == 0);
    double dot = 0;
    const auto vv = v.to_vector(), vw = w.to_vector();
    for (size_t i = 0; i < 4; ++i) dot += vv[i] * vw[i];
    REQUIRE(matmul(v, w).item() == Approx(dot).epsilon(1e-14));
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {v, m});
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& x) { return matmul(x[0], x[0]); }, {v});
}

TEST_CASE("matmul rejects incompatible shapes", "[ops][errors]") {
    REQUIRE_THROWS_WITH(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: cannot multiply [2,3] by [4,5] (3 != 4)");
    REQUIRE_THROWS_WITH(matmul(zeros({2, 2, 3}), zeros({3, 3, 5})),
                        "matmul: shapes [2] and [3] cannot be broadcast (2 vs 3 at dim 0)");
    REQUIRE_THROWS_WITH(matmul(zeros({2, 3}), zeros({3, 5}, test::f64())),
                        Catch::StartsWith("matmul: dtype mismatch (float32 [2,3] vs float64 [3,5])"));
    REQUIRE_THROWS_WITH(matmul(zeros({}), zeros({3})), "matmul: both arguments need at least 1 dim, got [] and [3]");
}
