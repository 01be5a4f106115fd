// Generator::state / set_state continue the exact stream, the spare normal of a pair included.
#include "core/random.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"

using namespace latte;

TEST_CASE("a generator restored from state() continues the same stream", "[core][random][checkpoint]") {
    Generator gen(42);
    gen.normal();  // leaves the pair's sin as the spare
    randn({4}, gen);  // the spare, then two pairs: the last sin is the new spare
    const GeneratorState saved = gen.state();
    REQUIRE(saved.has_spare);
    const std::vector<double> expected = randn({7}, gen, TensorOptions{}.with_dtype(DType::Float64)).to_vector();
    const double next = gen.normal();

    Generator other(7);
    other.set_state(saved);
    REQUIRE(other.state() == saved);
    REQUIRE(randn({7}, other, TensorOptions{}.with_dtype(DType::Float64)).to_vector() == expected);
    REQUIRE(other.normal() == next);
    REQUIRE(other.state() == gen.state());
}
