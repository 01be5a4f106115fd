// Conversions that cannot be right are refused instead of written: a GQA with RoPE has no MLA
// equivalent (its keys rotate by position), a full-rank conversion whose check is off is a wrong
// model, and a NaN in W cannot make two head blocks "equal".
#include <filesystem>
#include <limits>

#include "experiments/commands.h"
#include "experiments/inference.h"
#include "nn/conversion.h"
#include "nn/gqa.h"
#include "nn/mla.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::nn;

TEST_CASE("to_mla and latte convert refuse a GQA with RoPE", "[nn][conversion][convert]") {
    Generator gen(3);
    GroupedQueryAttention gqa(16, 16, 4, 4, 4, 2, gen, DType::Float64, RoPE{true});
    REQUIRE_THROWS_WITH(to_mla(gqa), Catch::StartsWith("to_mla: this GQA (D=16 H=4 G=2) has RoPE on q and k"));

    const test::ScratchDir s("convert_rope");
    save(gqa, s / "gqa_rope.safetensors");
    const auto o = test::run_command(experiments::cmd_convert, "convert",
                                     {"--in", s / "gqa_rope.safetensors", "--out", s / "mla.safetensors"});
    REQUIRE(o.rc != 0);
    REQUIRE(o.error.find("has RoPE on q and k") != std::string::npos);
    REQUIRE(!std::filesystem::exists(s / "mla.safetensors"));
}

TEST_CASE("a conversion check fails above float64 round-off when the rank covers the GQA", "[convert]") {
    using experiments::check_conversion;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    // Full rank: exact, so 1e-6 means a wrong model.
    REQUIRE_NOTHROW(check_conversion("t", 1e-15, 1e-7, DType::Float32, 8, 8, "out.safetensors"));
    REQUIRE_THROWS_WITH(check_conversion("t", 1e-6, 1e-6, DType::Float32, 8, 8, "out.safetensors"),
                        Catch::Contains("above 1e-09") && Catch::Contains("nothing written to out.safetensors"));
    // A rank below the one needed is lossy by request: reported, not refused.
    REQUIRE_NOTHROW(check_conversion("t", 0.3, 0.3, DType::Float32, 4, 8, "out.safetensors"));
    // Non-finite always fails.
    REQUIRE_THROWS_WITH(check_conversion("t", nan, 0.1, DType::Float32, 4, 8, "out.safetensors"),
                        Catch::Contains("nothing written"));
}

TEST_CASE("is_gqa_representable: a NaN is never equal, and rtol must be non-negative", "[nn][conversion]") {
    // Two identical copies of a (G*d, D) block: representable with G = 2 from H = 4.
    const Tensor block = test::randn64({4, 6}, 1, false);
    Tensor W = cat({block, block}, 0);
    REQUIRE(is_gqa_representable(W, 4, 2));
    Tensor with_nan = contiguous(W);
    copy_(narrow(narrow(with_nan, 0, 5, 1), 1, 2, 1), full({1, 1}, std::numeric_limits<double>::quiet_NaN(),
                                                             TensorOptions{}.with_dtype(DType::Float64)));
    REQUIRE_FALSE(is_gqa_representable(with_nan, 4, 2));
    REQUIRE_THROWS_WITH(is_gqa_representable(W, 4, 2, -1e-9),
                        Catch::StartsWith("is_gqa_representable: rtol must be a non-negative number"));
}
