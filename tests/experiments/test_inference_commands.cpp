// The experiments behind `latte convert`, `latte absorb` and `latte decode`.
#include <cstdio>

#include "experiments/inference.h"
#include "nn/serialize.h"
#include "ops/ops.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;
using namespace latte::experiments;

TEST_CASE("convert_checkpoint writes an MLA file whose module matches the GQA it came from", "[experiments][convert]") {
    Generator gen(3);
    nn::GroupedQueryAttention gqa(24, 24, 6, 6, 4, 2, gen);
    const std::string in = test::temp_path("gqa.safetensors"), out = test::temp_path("mla.safetensors");
    nn::save(gqa, in);
    const ConvertReport report = convert_checkpoint(in, out);
    REQUIRE(report.dtype == DType::Float32);
    REQUIRE(report.check64.mla->rank() == 24);  // min(2*G*d, D) = min(24, 24)
    REQUIRE(report.check64.rank_needed == 24);
    REQUIRE(report.gqa_cache == 24);
    REQUIRE(report.mla_cache == 24);
    REQUIRE(report.check64.relative_error < 1e-12);
    REQUIRE(report.relative_error_saved < 1e-5);

    // Independently of the report: load the file and compare with the GQA on new inputs.
    const nn::SafetensorsFile file = nn::load_safetensors(out);
    REQUIRE(file.metadata.at("module") == "mla");
    auto mla = nn::make_attention(file.metadata, gen);
    nn::load(*mla, out);
    Tensor x = randn({2, 5, 24}, gen), y = randn({2, 8, 24}, gen);
    REQUIRE(relative_error(mla->forward(x, y), gqa.forward(x, y)) < 1e-5);

    // Only a GQA file converts.
    REQUIRE_THROWS_WITH(convert_checkpoint(out, test::temp_path("again.safetensors")),
                        Catch::Contains("does not hold a GQA module (its metadata says module=mla)"));
    std::remove(in.c_str());
    std::remove(out.c_str());
}

TEST_CASE("the Part 13 experiment on small sizes: absorbed equals vanilla", "[experiments][absorb]") {
    AbsorbCase c;
    c.D = 32;
    c.H = 4;
    c.r = 5;
    c.B = 2;
    c.L1 = 6;
    c.L2 = 9;
    c.repeats = 1;
    const AbsorbReport f64 = run_absorb_case(c, DType::Float64);
    for (double error : {f64.error_precomputed, f64.error_factored}) {
        REQUIRE(error < 1e-12);
        REQUIRE(error > 0);  // two different computations, not one compared with itself
    }
    const AbsorbReport f32 = run_absorb_case(c, DType::Float32);
    REQUIRE(f32.error_precomputed < 1e-3);
    REQUIRE(f32.error_factored < 1e-3);
    // The work counts match those the README gives for the spec's case: 57.6 vs 28.1 GFLOP.
    const AbsorbGflop spec = absorb_gflop(AbsorbCase{});
    REQUIRE(spec.vanilla == Approx(57.6).margin(0.05));
    REQUIRE(spec.precomputed == Approx(28.1).margin(0.05));
    REQUIRE(spec.factored < spec.precomputed);  // r = 50 > d = 32
}

TEST_CASE("run_decode reports cache sizes and matches the full forward", "[experiments][decode]") {
    Generator gen(4);
    nn::MultiHeadLatentAttention mla(16, 4, 4, 6, gen, DType::Float64);
    const DecodeReport r = run_decode(mla, 3, 7, 5, true);
    REQUIRE(r.numbers_per_position == 6);
    REQUIRE(r.bytes_per_position == 48);
    REQUIRE(r.total_bytes == 3 * 7 * 48);
    REQUIRE(r.tokens == 21);
    REQUIRE(r.relative_error >= 0);
    REQUIRE(r.relative_error < 1e-12);
    nn::GroupedQueryAttention gqa(16, 16, 4, 4, 4, 2, gen, DType::Float64);
    REQUIRE(run_decode(gqa, 2, 5, 6, true).numbers_per_position == 16);
}
