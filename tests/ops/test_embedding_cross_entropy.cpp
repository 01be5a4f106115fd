#include <cmath>
#include <limits>

#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

Tensor ids_of(const std::vector<double>& values, const Shape& shape) {
    return from_vector(values, shape, TensorOptions{}.with_dtype(DType::Int64));
}

}  // namespace

TEST_CASE("embedding gathers rows and scatter-adds its gradient, repeated ids included", "[ops][embedding]") {
    Tensor w = test::randn64({5, 3}, 1);
    const std::vector<double> idv{1, 4, 1, 0, 1, 3};
    Tensor ids = ids_of(idv, {2, 3});
    Tensor out = embedding(w, ids);
    REQUIRE(out.shape() == Shape{2, 3, 3});
    const auto wv = w.to_vector(), ov = out.to_vector();
    for (size_t i = 0; i < idv.size(); ++i)
        for (size_t c = 0; c < 3; ++c) REQUIRE(ov[i * 3 + c] == wv[static_cast<size_t>(idv[i]) * 3 + c]);
    Tensor g = test::randn64({2, 3, 3}, 2, false);
    out.backward(g);
    // The loop: dw[v] = sum of g's rows whose id is v (id 1 appears three times, id 2 never).
    std::vector<double> want(15, 0.0);
    const auto gv = g.to_vector();
    for (size_t i = 0; i < idv.size(); ++i)
        for (size_t c = 0; c < 3; ++c) want[static_cast<size_t>(idv[i]) * 3 + c] += gv[i * 3 + c];
    LATTE_REQUIRE_CLOSE(w.grad(), from_vector(want, {5, 3}, test::f64()), 1e-14, 0);
    LATTE_REQUIRE_GRADCHECK([ids](const std::vector<Tensor>& v) { return embedding(v[0], ids); }, {w});
    // 0-d ids give one row; float32 works the same.
    REQUIRE(embedding(w.detach(), ids_of({3}, {})).shape() == Shape{3});
    LATTE_REQUIRE_CLOSE(to(embedding(to(w.detach(), DType::Float32), ids), DType::Float64), out.detach(), 1e-7, 0);
}

TEST_CASE("embedding names the first out-of-range id and its index", "[ops][embedding]") {
    Tensor w = zeros({5, 3});
    REQUIRE_THROWS_WITH(embedding(w, ids_of({0, 5, -1, 2}, {2, 2})),
                        "embedding: id 5 at index [0,1] is out of range [0, 5) for weight [5,3]");
    REQUIRE_THROWS_WITH(embedding(w, ids_of({0, 1, -1}, {3})),
                        "embedding: id -1 at index [2] is out of range [0, 5) for weight [5,3]");
    REQUIRE_THROWS_WITH(embedding(w, zeros({2})), "embedding: ids must be int64, got float32 [2]");
    REQUIRE_THROWS_WITH(embedding(zeros({5}), ids_of({0}, {1})), "embedding: weight must be 2-D (V, D), got [5]");
}

TEST_CASE("cross_entropy equals the per-row log-sum-exp loop, with ignore_index and every reduction",
          "[ops][cross_entropy]") {
    Tensor x = test::randn64({4, 5}, 3);
    const std::vector<double> tv{1, -100, 4, 0};
    Tensor t = ids_of(tv, {4});
    const auto xv = x.to_vector();
    std::vector<double> rows(4, 0.0);
    double total = 0;
    for (size_t r = 0; r < 4; ++r) {
        if (tv[r] == -100) continue;
        double s = 0;
        for (size_t c = 0; c < 5; ++c) s += std::exp(xv[r * 5 + c]);
        rows[r] = std::log(s) - xv[r * 5 + static_cast<size_t>(tv[r])];
        total += rows[r];
    }
    REQUIRE(cross_entropy(x, t).item() == Approx(total / 3).epsilon(1e-14));
    REQUIRE(cross_entropy(x, t, -100, Reduction::Sum).item() == Approx(total).epsilon(1e-14));
    LATTE_REQUIRE_CLOSE(cross_entropy(x, t, -100, Reduction::None), from_vector(rows, {4}, test::f64()), 1e-14, 1e-15);
    // The gradient of the mean: (softmax - onehot) / 3, a zero row where the target is ignored.
    Tensor loss = cross_entropy(x, t);
    loss.backward();
    const auto p = softmax(x.detach(), 1).to_vector(), gx = x.grad().to_vector();
    for (size_t r = 0; r < 4; ++r)
        for (size_t c = 0; c < 5; ++c) {
            const double want = tv[r] == -100 ? 0.0 : (p[r * 5 + c] - (c == static_cast<size_t>(tv[r]) ? 1 : 0)) / 3;
            REQUIRE(gx[r * 5 + c] == Approx(want).margin(1e-15));
        }
    for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
        auto f = [t, red](const std::vector<Tensor>& v) { return cross_entropy(v[0], t, -100, red); };
        LATTE_REQUIRE_GRADCHECK(f, {x});
    }
    // Another ignore_index, and (B, L, V) logits equal their (B*L, V) flattening.
    Tensor x3 = test::randn64({2, 3, 6}, 4);
    Tensor t3 = ids_of({5, 0, 2, 2, 1, 3}, {2, 3});
    REQUIRE(cross_entropy(x3, t3, 2).item() ==
            Approx(cross_entropy(reshape(x3, {6, 6}), reshape(t3, {6}), 2).item()).epsilon(1e-14));
    REQUIRE(cross_entropy(x3, t3, -1, Reduction::None).shape() == Shape{2, 3});
    LATTE_REQUIRE_GRADCHECK([t3](const std::vector<Tensor>& v) { return cross_entropy(v[0], t3, 2); }, {x3});
}

TEST_CASE("cross_entropy is stable for large logits, agrees in float32, and is NaN when all rows are ignored",
          "[ops][cross_entropy]") {
    Tensor x = from_vector(std::vector<double>{1000, 1001, 1002, -1000, 0, 1000}, {2, 3}, test::f64());
    Tensor t = ids_of({2, 0}, {2});
    const double z = std::log(1 + std::exp(1.0) + std::exp(2.0));
    const auto l = cross_entropy(x, t, -100, Reduction::None).to_vector();
    REQUIRE(l[0] == Approx(z - 2).epsilon(1e-12));  // 1000 + z - 1002 rounds at 1e-13
    REQUIRE(l[1] == Approx(2000).epsilon(1e-14));
    Tensor y = test::randn64({7, 300}, 5, false);
    Tensor ty = ids_of({0, 299, 5, -100, 17, 100, 3}, {7});
    REQUIRE(cross_entropy(to(y, DType::Float32), ty).item() == Approx(cross_entropy(y, ty).item()).epsilon(1e-6));
    REQUIRE(std::isnan(cross_entropy(y, ids_of(std::vector<double>(7, -100), {7})).item()));
}

TEST_CASE("cross_entropy refuses bad targets with the op and shapes named", "[ops][cross_entropy]") {
    Tensor x = zeros({4, 5});
    REQUIRE_THROWS_WITH(cross_entropy(x, ids_of({0, 1, 5, 9}, {4})),
                        "cross_entropy: target 5 at index [2] is out of range [0, 5) for logits [4,5] (ignore_index -100)");
    REQUIRE_THROWS_WITH(cross_entropy(x, ids_of({0, -100, -1, 0}, {4}), -100),
                        "cross_entropy: target -1 at index [2] is out of range [0, 5) for logits [4,5] (ignore_index -100)");
    REQUIRE_THROWS_WITH(cross_entropy(x, ids_of({0, 1, 2}, {3})),
                        "cross_entropy: targets [3] must have the shape of logits [4,5] without its last dim, [4]");
    REQUIRE_THROWS_WITH(cross_entropy(x, zeros({4})), "cross_entropy: targets must be int64, got float32 [4]");
}

TEST_CASE("argmax returns max's int64 indices, the first of ties", "[ops][argmax]") {
    Tensor x = from_vector(std::vector<double>{1, 3, 3, 0, -1, 2, 2, 7, 4}, {3, 3}, test::f64());
    Tensor a = argmax(x, 1);
    REQUIRE(a.dtype() == DType::Int64);
    REQUIRE(a.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 1});  // row 0: the first of the tied 3s
    REQUIRE(argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{2, 2, 2});
    REQUIRE(argmax(x, -1, true).shape() == Shape{3, 1});
    Tensor r = test::randn64({4, 7, 5}, 6, false);
    REQUIRE(argmax(r, 1).to_vector<int64_t>() == max(r, 1).indices.to_vector<int64_t>());
    REQUIRE_THROWS_WITH(argmax(x, 2), "argmax: dim 2 out of range for a tensor of 2 dims");
}

TEST_CASE("float32 cross_entropy keeps its gradient accurate at large logits", "[ops][cross_entropy]") {
    // The log-sum-exp is kept in float64: stored in float32, its rounding at 1e4 (an ulp of 1e-3)
    // put 6e-5 of relative error into the gradient; PyTorch stays near 1e-8.
    for (double offset : {0.0, 100.0, 1e4}) {
        CAPTURE(offset);
        const Tensor base = add(test::randn64({6, 11}, 5, false), offset);
        const Tensor targets = ids_of({0, 3, 10, 5, 5, 1}, {6});
        Tensor x32 = to(base, DType::Float32).detach();
        x32.requires_grad_(true);
        Tensor x64 = to(x32.detach(), DType::Float64).detach();  // the same values, exactly
        x64.requires_grad_(true);
        cross_entropy(x32, targets).backward();
        cross_entropy(x64, targets).backward();
        REQUIRE(relative_error(to(x32.grad(), DType::Float64), x64.grad()) < 1e-6);
    }
}

TEST_CASE("float32 cross_entropy on vocabulary-wide rows matches float64, with -inf logits and NaN", "[ops][cross_entropy]") {
    // The float32 rows run the vectorized exp (whole vectors and a tail at each width).
    for (int64_t cols : {1, 17, 512, 1000}) {
        CAPTURE(cols);
        Tensor base = test::randn64({5, cols}, 9, false);
        std::vector<double> v = base.to_vector();
        if (cols > 1) v[static_cast<size_t>(2 * cols + 1)] = -std::numeric_limits<double>::infinity();  // a masked logit
        base = from_vector(v, {5, cols}, test::f64());
        const std::vector<double> target_of = {0, double(cols - 1), 0, double(cols / 2), -100};  // per row
        const Tensor targets = ids_of(target_of, {5});
        Tensor x32 = to(base, DType::Float32).detach();
        x32.requires_grad_(true);
        Tensor x64 = to(x32.detach(), DType::Float64).detach();
        x64.requires_grad_(true);
        Tensor l32 = cross_entropy(x32, targets, -100, Reduction::None), l64 = cross_entropy(x64, targets, -100, Reduction::None);
        REQUIRE(relative_error(to(l32, DType::Float64), l64) < 1e-6);
        sum(l32).backward();
        sum(l64).backward();
        // Element by element, the smallest probabilities included: within a few float32 ulp of
        // each float64 value; the target's p - 1 cancels, so it gets an absolute 1e-6 as well.
        const auto g32 = x32.grad().to_vector(), g64 = x64.grad().to_vector();
        for (size_t i = 0; i < g64.size(); ++i) {
            CAPTURE(i, g32[i], g64[i]);
            const bool target = double(i % size_t(cols)) == target_of[i / size_t(cols)];
            REQUIRE(std::fabs(g32[i] - g64[i]) <= 2e-6 * std::fabs(g64[i]) + (target ? 1e-6 : 0.0));
        }
        if (cols > 1) REQUIRE(g32[static_cast<size_t>(2 * cols + 1)] == 0.0);  // exp(-inf)
    }
    // A NaN logit makes its row's loss and gradient NaN, and leaves the other rows alone.
    std::vector<float> nan_row(2 * 600, 0.5f);
    nan_row[7] = std::numeric_limits<float>::quiet_NaN();
    Tensor xn = from_vector(nan_row, {2, 600}).detach();
    xn.requires_grad_(true);
    Tensor ln = cross_entropy(xn, ids_of({3, 3}, {2}), -100, Reduction::None);
    const auto lv = ln.to_vector();
    REQUIRE(std::isnan(lv[0]));
    REQUIRE(lv[1] == Approx(std::log(600.0)).epsilon(1e-6));
    sum(ln).backward();
    const auto g = xn.grad().to_vector();
    REQUIRE(std::isnan(g[0]));
    REQUIRE(g[600] == Approx(1.0 / 600).epsilon(1e-5));
}
