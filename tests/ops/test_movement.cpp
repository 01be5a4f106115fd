#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

TEST_CASE("view ops pass gradcheck", "[ops][movement]") {
    Tensor x = test::randn64({2, 3, 4}, 41);
    using F = std::function<Tensor(const Tensor&)>;
    const std::vector<std::pair<const char*, F>> cases = {
        {"reshape", [](const Tensor& t) { return reshape(t, {4, 6}); }},
        {"reshape non-contiguous", [](const Tensor& t) { return reshape(transpose(t, 0, 2), {-1}); }},
        {"reshape strided view", [](const Tensor& t) { return reshape(narrow(t, 1, 1, 2), {2, 2, 2, 2}); }},
        {"repeat", [](const Tensor& t) { return repeat(t, {2, 1, 3}); }},
        {"permute", [](const Tensor& t) { return permute(t, {1, 2, 0}); }},
        {"transpose", [](const Tensor& t) { return transpose(t, -1, 0); }},
        {"expand", [](const Tensor& t) { return expand(unsqueeze(t, 1), {2, 5, 3, 4}); }},
        {"expand leading", [](const Tensor& t) { return expand(t, {3, 2, 3, 4}); }},
        {"squeeze", [](const Tensor& t) { return squeeze(narrow(t, 1, 1, 1), 1); }},
        {"narrow", [](const Tensor& t) { return narrow(t, 2, 1, 2); }},
        {"slice step", [](const Tensor& t) { return slice(t, 2, 0, 4, 2); }},
        {"select", [](const Tensor& t) { return select(t, 1, 2); }},
        {"contiguous", [](const Tensor& t) { return contiguous(permute(t, {2, 0, 1})); }},
        {"clone", [](const Tensor& t) { return clone(t); }},
        {"sum_to", [](const Tensor& t) { return sum_to(t, {3, 1}); }},
        {"to float32 and back", [](const Tensor& t) { return to(to(t, DType::Float32), DType::Float64); }},
    };
    for (const auto& [name, f] : cases) {
        SECTION(name) {
            if (std::string(name) == "to float32 and back") {
                // float32 rounding limits the finite-difference accuracy here.
                LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return f(v[0]); }, {x},
                                        GradcheckOptions{1e-3, 1e-4, 1e-3, 1234});
            } else {
                LATTE_REQUIRE_GRADCHECK([&](const std::vector<Tensor>& v) { return f(v[0]); }, {x});
            }
        }
    }
}

TEST_CASE("reshape views a strided tensor when its layout allows and copies otherwise", "[ops][movement]") {
    Tensor cache = reshape(arange(0, 24, 1, test::f64()), {2, 4, 3});  // (B, capacity, width)
    Tensor filled = narrow(cache, 1, 0, 2);                              // (B, 2, 3) strides (12, 3, 1)
    Tensor split = reshape(filled, {2, 2, 1, 3});
    REQUIRE(split.storage() == cache.storage());
    REQUIRE(split.strides() == Shape{12, 3, 3, 1});
    REQUIRE(split.to_vector() == contiguous(filled).to_vector());
    Tensor merged = reshape(filled, {2, 6});  // rows 0-1 of each batch are adjacent: a view
    REQUIRE(merged.storage() == cache.storage());
    Tensor across = reshape(filled, {12});  // the batches are 12 apart, not 6: must copy
    REQUIRE(across.storage() != cache.storage());
    REQUIRE(across.to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17});
    Shape strides;
    REQUIRE_FALSE(view_strides({3, 4}, {1, 3}, {12}, strides));  // a transpose cannot be flattened
    REQUIRE(view_strides({3, 4}, {1, 3}, {3, 2, 2}, strides));   // but its last dim can be split
    REQUIRE(strides == Shape{1, 6, 3});
}

TEST_CASE("repeat tiles along each dim like torch.Tensor.repeat", "[ops][movement]") {
    Tensor a = reshape(arange(0, 4, 1, test::f64()), {2, 2});
    REQUIRE(repeat(a, {2, 1}).to_vector() == std::vector<double>{0, 1, 2, 3, 0, 1, 2, 3});
    REQUIRE(repeat(a, {1, 2}).to_vector() == std::vector<double>{0, 1, 0, 1, 2, 3, 2, 3});
    REQUIRE_THROWS_WITH(repeat(a, {2}), "repeat: 1 counts for input of shape [2,2] (need one per dim)");
}

TEST_CASE("cat and stack join along a dim and route gradients back", "[ops][movement]") {
    Tensor a = reshape(arange(0, 6, 1, test::f64()), {2, 3});
    Tensor b = reshape(arange(6, 10, 1, test::f64()), {2, 2});
    Tensor c = cat({a, b}, 1);
    REQUIRE(c.shape() == Shape{2, 5});
    REQUIRE(c.to_vector() == std::vector<double>{0, 1, 2, 6, 7, 3, 4, 5, 8, 9});
    Tensor s = stack({a, a}, 0);
    REQUIRE(s.shape() == Shape{2, 2, 3});
    REQUIRE(stack({a, a}, -1).shape() == Shape{2, 3, 2});
    Tensor x = test::randn64({2, 3}, 51), y = test::randn64({2, 4}, 52);
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return cat({v[0], v[1], v[0]}, 1); },
                            (std::vector<Tensor>{x, y}));
    LATTE_REQUIRE_GRADCHECK([](const std::vector<Tensor>& v) { return stack({v[0], transpose(v[1], 0, 1)}, 1); },
                            (std::vector<Tensor>{x, test::randn64({3, 2}, 53)}));
}

TEST_CASE("movement ops reject bad shapes with clear messages", "[ops][errors]") {
    Tensor x = zeros({2, 3});
    REQUIRE_THROWS_WITH(reshape(x, {4, 2}), "reshape: cannot reshape [2,3] (6 elements) into [4,2] (8 elements)");
    REQUIRE_THROWS_WITH(reshape(x, {-1, -1}), "reshape: only one size may be -1 in [-1,-1]");
    REQUIRE_THROWS_WITH(permute(x, {0, 0}), "permute: dim 0 repeated in [0,0]");
    REQUIRE_THROWS_WITH(permute(x, {0}), "permute: 1 dims given for a tensor of shape [2,3]");
    REQUIRE_THROWS_WITH(expand(x, {2, 4}), "expand: cannot expand [2,3] to [2,4] (size 3 at dim 1 is not 1)");
    REQUIRE_THROWS_WITH(squeeze(x, 0), "squeeze: dim 0 of shape [2,3] has size 2, not 1");
    REQUIRE_THROWS_WITH(narrow(x, 1, 2, 2), "narrow: start 2, length 2 is outside dim 1 of shape [2,3]");
    REQUIRE_THROWS_WITH(cat({x, zeros({3, 3})}, 1), "cat: tensor 1 has shape [3,3], which differs from [2,3] outside dim 1");
    REQUIRE_THROWS_WITH(stack({x, zeros({3, 2})}, 0), "stack: tensor 1 has shape [3,2], expected [2,3]");
    REQUIRE_THROWS_WITH(transpose(x, 0, 2), "transpose: dim 2 out of range for a tensor of 2 dims");
}
