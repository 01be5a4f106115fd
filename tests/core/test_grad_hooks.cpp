// Post-accumulate-grad hooks and backward callbacks: what DistributedDataParallel builds on.
#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "core/factory.h"
#include "ops/ops.h"

using namespace latte;

TEST_CASE("a post-accumulate-grad hook runs once per backward, after the leaf's gradient is complete", "[autograd]") {
    Tensor x = from_vector(std::vector<double>{1, 2, 3}, {3}, TensorOptions{}.with_dtype(DType::Float64));
    x.requires_grad_();
    std::vector<std::vector<double>> seen;
    const uint64_t handle = x.register_post_accumulate_grad_hook([&] { seen.push_back(x.grad().to_vector<double>()); });
    // x is used twice: the hook must see the sum of both paths (2x + 1), not a partial gradient.
    sum(add(mul(x, x), x)).backward();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == std::vector<double>{3, 5, 7});
    sum(x).backward();  // accumulates: 2x + 2
    REQUIRE(seen.size() == 2);
    CHECK(seen[1] == std::vector<double>{4, 6, 8});
    x.remove_post_accumulate_grad_hook(handle);
    sum(x).backward();
    CHECK(seen.size() == 2);
}

TEST_CASE("a backward callback queued by a hook runs after every hook of that backward", "[autograd]") {
    Tensor a = ones({2}, TensorOptions{}.with_requires_grad(true)), b = ones({2}, TensorOptions{}.with_requires_grad(true));
    std::vector<std::string> order;
    a.register_post_accumulate_grad_hook([&] {
        order.push_back("a");
        queue_backward_callback([&] { order.push_back("end"); });
    });
    b.register_post_accumulate_grad_hook([&] { order.push_back("b"); });
    sum(mul(a, b)).backward();
    REQUIRE(order.size() == 3);
    CHECK(order.back() == "end");
    CHECK_THROWS_WITH(queue_backward_callback([] {}), Catch::Contains("no backward is running"));
}

TEST_CASE("hooks go only on leaves that require grad", "[autograd]") {
    Tensor a = ones({2}, TensorOptions{}.with_requires_grad(true));
    Tensor b = mul(a, 2.0);
    CHECK_THROWS_WITH(b.register_post_accumulate_grad_hook([] {}), Catch::Contains("is not a leaf that requires grad"));
    CHECK_THROWS_WITH(ones({2}).register_post_accumulate_grad_hook([] {}), Catch::Contains("not a leaf that requires grad"));
}
