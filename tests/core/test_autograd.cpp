#include "core/node.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

TEST_CASE("backward computes closed-form gradients and accumulates over uses", "[autograd]") {
    // f(x) = sum(x * x + 3 x): df/dx = 2x + 3; x is used three times in one graph.
    Tensor x = from_vector(std::vector<double>{1, -2, 0.5}, {3}, test::f64(true));
    Tensor f = sum(add(mul(x, x), mul(x, 3.0)));
    f.backward();
    REQUIRE(x.grad().to_vector() == std::vector<double>{5, -1, 4});
    // A second graph adds into the same .grad, as in PyTorch.
    sum(x).backward();
    REQUIRE(x.grad().to_vector() == std::vector<double>{6, 0, 5});
    x.zero_grad();
    REQUIRE_FALSE(x.grad().defined());
}

TEST_CASE("a leaf keeps a gradient nothing else holds, and copies one that something else holds", "[autograd]") {
    // add's backward hands the same tensor to both inputs: each leaf ends with its own storage.
    Tensor a = test::randn64({4}, 11), b = test::randn64({4}, 12);
    mul(add(a, b), 3.0).backward(ones({4}, test::f64()));
    REQUIRE(a.grad().storage() != b.grad().storage());
    REQUIRE(a.grad().to_vector() == std::vector<double>(4, 3.0));
    REQUIRE(b.grad().to_vector() == std::vector<double>(4, 3.0));
    // A gradient the caller passed in and still holds reaches the leaf unchanged: the leaf copies
    // it, so writing into the caller's tensor afterwards leaves the leaf's gradient alone.
    Tensor x = test::randn64({3}, 13);
    Tensor upstream = from_vector(std::vector<double>{1, 2, 3}, {3}, test::f64());
    add(x, 0.0).backward(upstream);
    REQUIRE(x.grad().storage() != upstream.storage());
    copy_(upstream, full({3}, 7.0, test::f64()));
    REQUIRE(x.grad().to_vector() == std::vector<double>{1, 2, 3});
    // Accumulating over a second backward adds into the kept tensor.
    mul(x, 2.0).backward(ones({3}, test::f64()));
    REQUIRE(x.grad().to_vector() == std::vector<double>{3, 4, 5});
}

TEST_CASE("leaves keep gradients, non-leaves only with retain_grad", "[autograd]") {
    Tensor x = test::randn64({2, 3}, 1);
    Tensor y = mul(x, 2.0);
    Tensor z = mul(y, y);
    z.retain_grad();
    Tensor w = exp(z);
    sum(w).backward();
    REQUIRE(x.is_leaf());
    REQUIRE_FALSE(y.is_leaf());
    REQUIRE_FALSE(y.grad().defined());
    LATTE_REQUIRE_CLOSE(z.grad(), exp(z.detach()), 1e-12, 0);
    LATTE_REQUIRE_CLOSE(x.grad(), mul(mul(exp(z.detach()), y.detach()), 4.0), 1e-12, 0);
    REQUIRE(y.grad_fn()->name() == "mul_scalar");
}

TEST_CASE("retain_graph allows a second backward; without it the error is clear", "[autograd]") {
    Tensor x = test::randn64({4}, 2);
    Tensor loss = sum(exp(x));
    loss.backward(Tensor(), /*retain_graph=*/true);
    const auto first = x.grad().to_vector();
    loss.backward();
    const auto twice = x.grad().to_vector();
    for (size_t i = 0; i < first.size(); ++i) REQUIRE(twice[i] == Approx(2 * first[i]));
    REQUIRE_THROWS_WITH(loss.backward(), Catch::Contains("backward through the graph a second time") &&
                                             Catch::Contains("retain_graph=true"));
}

TEST_CASE("backward of a non-scalar needs an explicit gradient", "[autograd]") {
    Tensor x = test::randn64({2, 2}, 3);
    Tensor y = mul(x, 3.0);
    REQUIRE_THROWS_WITH(y.backward(), "backward: grad can be implicitly created only for one-element outputs; "
                                      "this output has shape [2,2], pass a gradient of that shape");
    REQUIRE_THROWS_WITH(y.backward(ones({3}, test::f64())),
                        "backward: gradient has shape [3], output has shape [2,2]");
    y.backward(ones({2, 2}, test::f64()));
    LATTE_REQUIRE_CLOSE(x.grad(), full({2, 2}, 3.0, test::f64()), 0, 0);
    Tensor plain = ones({2});
    REQUIRE_THROWS_WITH(plain.backward(), "backward: tensor of shape [2] does not require grad and has no grad_fn");
}

TEST_CASE("detach, NoGradGuard and requires_grad_ control recording", "[autograd]") {
    Tensor x = test::randn64({3}, 4);
    {
        NoGradGuard guard;
        Tensor y = mul(x, 2.0);
        REQUIRE_FALSE(y.requires_grad());
        REQUIRE_FALSE(grad_mode_enabled());
    }
    REQUIRE(grad_mode_enabled());
    Tensor d = x.detach();
    REQUIRE_FALSE(d.requires_grad());
    REQUIRE(d.storage() == x.storage());
    Tensor y = mul(x, d);  // d carries no gradient: dy/dx = d
    sum(y).backward();
    LATTE_REQUIRE_CLOSE(x.grad(), d, 0, 0);
    REQUIRE_THROWS_WITH(y.requires_grad_(false), Catch::Contains("only leaf tensors can change requires_grad"));
}

TEST_CASE("a deep chain runs without recursion and the graph holds no cycles", "[autograd]") {
    Tensor x = test::randn64({8}, 5);
    Tensor y = x;
    for (int i = 0; i < 20000; ++i) y = add(y, 1e-6);
    sum(y).backward();
    LATTE_REQUIRE_CLOSE(x.grad(), ones({8}, test::f64()), 0, 0);
    // Once the outputs are gone, every intermediate storage is freed.
    const int64_t live = memory_stats().live_bytes;
    { Tensor z = exp(mul(x, 2.0)); sum(z).backward(); }
    REQUIRE(memory_stats().live_bytes == live);
}

TEST_CASE("gradcheck catches a wrong backward", "[autograd]") {
    // A deliberately wrong op: forward x^2, backward claims 3x.
    auto wrong = [](const std::vector<Tensor>& in) {
        Tensor out = mul(in[0].detach(), in[0].detach());
        if (needs_graph({in[0]})) {
            Tensor xs = in[0].detach();
            record(out, "wrong_square", {in[0]}, [xs](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
                return {mul(g, mul(xs, 3.0))};
            });
        }
        return out;
    };
    const auto result = gradcheck(wrong, {test::randn64({3}, 6)});
    REQUIRE_FALSE(result.ok);
    REQUIRE_THAT(result.message, Catch::Contains("input 0 [3], element 0: analytic"));
    // The engine checks gradient shapes against the input's.
    auto bad_shape = [](const std::vector<Tensor>& in) {
        Tensor out = mul(in[0].detach(), 2.0);
        record(out, "bad_shape", {in[0]}, [](const Tensor& g, const std::vector<bool>&) -> std::vector<Tensor> {
            return {sum(g, {0}, true)};
        });
        return out;
    };
    Tensor x = test::randn64({2, 5}, 7);
    REQUIRE_THROWS_WITH(sum(bad_shape({x})).backward(),
                        "backward of bad_shape: grad for input 0 has shape [1,5], expected [2,5]");
}
