// Version counters: an in-place write to a tensor that a backward node saved makes that backward
// fail with the op and both versions, instead of differentiating with the new values.
#include "core/autograd.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

TEST_CASE("an in-place write to a saved tensor makes backward fail", "[autograd][version]") {
    Tensor w = from_vector(std::vector<double>{1, 2, 3}, {3}, test::f64(true));
    Tensor l = sum(mul(w, w));
    const uint64_t before = w.storage()->version();
    {
        NoGradGuard no_grad;
        copy_(w, zeros({3}, test::f64()));
    }
    REQUIRE(w.storage()->version() == before + 1);
    REQUIRE_THROWS_WITH(l.backward(),
                        "backward of mul: a tensor of shape [3] that it saved was modified by an in-place operation "
                        "(saved at version 0, now version 1); clone it before writing, or write it after backward");
}

TEST_CASE("without the write the same graph gives 2w", "[autograd][version]") {
    Tensor w = from_vector(std::vector<double>{1, 2, 3}, {3}, test::f64(true));
    sum(mul(w, w)).backward();
    REQUIRE(w.grad().to_vector() == std::vector<double>{2, 4, 6});
}

TEST_CASE("an optimizer step between two retain_graph backwards is refused", "[autograd][version]") {
    for (const bool adam : {false, true}) {
        Tensor w = test::randn64({4}, 3);
        Tensor l = sum(exp(mul(w, w)));
        std::unique_ptr<nn::Optimizer> opt;
        if (adam) opt = std::make_unique<nn::Adam>(std::vector<Tensor>{w}, 0.1);
        else opt = std::make_unique<nn::SGD>(std::vector<Tensor>{w}, 0.1);
        l.backward(Tensor(), /*retain_graph=*/true);
        opt->step();
        REQUIRE_THROWS_WITH(l.backward(), Catch::Contains("that it saved was modified by an in-place operation") &&
                                              Catch::Contains("now version 1"));
    }
}

TEST_CASE("writes to tensors a backward does not read are allowed", "[autograd][version]") {
    // add's backward reads neither operand, so writing one afterwards changes nothing (as in PyTorch).
    Tensor a = test::randn64({3}, 1), b = test::randn64({3}, 2);
    Tensor l = sum(add(a, b));
    {
        NoGradGuard no_grad;
        copy_(b, ones({3}, test::f64()));
    }
    l.backward();
    REQUIRE(a.grad().to_vector() == std::vector<double>{1, 1, 1});
}

TEST_CASE("softmax and matmul check what they saved", "[autograd][version]") {
    Tensor x = test::randn64({2, 3}, 4), w = test::randn64({3, 2}, 5);
    Tensor y = softmax(matmul(x, w), -1);
    Tensor l = sum(mul(y, test::randn64({2, 2}, 6, false)));
    {
        NoGradGuard no_grad;
        copy_(w, zeros({3, 2}, test::f64()));
    }
    REQUIRE_THROWS_WITH(l.backward(), Catch::StartsWith("backward of matmul: a tensor of shape [3,2]"));
}

TEST_CASE("anomaly mode names the first backward that makes a NaN", "[autograd][anomaly]") {
    // sqrt's backward at 0 divides by 0: the incoming gradient is finite, the outgoing one is Inf.
    Tensor x = from_vector(std::vector<double>{4, 0, 1}, {3}, test::f64(true));
    Tensor l = sum(mul(sqrt(x), 2.0));
    {
        DetectAnomalyGuard anomaly;
        REQUIRE(detect_anomaly_enabled());
        REQUIRE_THROWS_WITH(l.backward(Tensor(), true),
                            "anomaly: backward of sqrt produced a non-finite gradient for its input 0 of shape [3]: "
                            "inf at index [1]");
    }
    REQUIRE_FALSE(detect_anomaly_enabled());
    l.backward();  // off: the Inf reaches x.grad as in PyTorch
    REQUIRE(std::isinf(x.grad().to_vector()[1]));
}

TEST_CASE("anomaly mode refuses a non-finite seed and passes finite graphs", "[autograd][anomaly]") {
    DetectAnomalyGuard anomaly;
    Tensor x = test::randn64({3}, 7);
    Tensor y = mul(x, 2.0);
    REQUIRE_THROWS_WITH(y.backward(from_vector(std::vector<double>{1, NAN, 1}, {3}, test::f64())),
                        "anomaly: the gradient backward starts from holds nan at index [1]");
    Tensor z = sum(tanh(mul(x, x)));
    z.backward();
    REQUIRE(x.grad().defined());
}
