// `latte absorb` and `latte decode` exit with code 1 when a checked relative error is above the
// tolerance (a GPU run is judged by its exit codes), and 0 when every error is within it.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "experiments/commands.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

// The spec's Part 13 at small sizes; float64 errors are about 1e-16, never exactly 0.
const std::vector<std::string> kSmallAbsorb = {"--D", "32",  "--H",  "4",  "--r",       "5", "--batch",
                                               "2",   "--L1", "6",   "--L2", "9",       "--repeats", "1"};
const std::vector<std::string> kSmallDecode = {"--model", "mla", "--D", "16", "--H", "2", "--d", "8", "--r", "8",
                                               "--batch", "2",   "--steps", "5"};

}  // namespace

TEST_CASE("latte absorb exits 1 when an error is above the tolerance and 0 within it", "[experiments][absorb]") {
    const test::CommandOutcome ok = test::run_command(cmd_absorb, "absorb", kSmallAbsorb);
    REQUIRE(ok.error.empty());
    REQUIRE(ok.rc == 0);
    REQUIRE(ok.stdout_text.find("float32") != std::string::npos);
    REQUIRE(ok.stdout_text.find("float64") != std::string::npos);

    const test::CommandOutcome tight =
        test::run_command(cmd_absorb, "absorb", with(kSmallAbsorb, {"--dtype", "f64", "--tolerance", "1e-300"}));
    REQUIRE(tight.error.empty());
    REQUIRE(tight.rc == 1);
    REQUIRE(tight.stdout_text.find("float64") != std::string::npos);  // the table is printed all the same

    const test::CommandOutcome loose =
        test::run_command(cmd_absorb, "absorb", with(kSmallAbsorb, {"--dtype", "f32", "--tolerance", "1"}));
    REQUIRE(loose.rc == 0);

    const test::CommandOutcome negative =
        test::run_command(cmd_absorb, "absorb", with(kSmallAbsorb, {"--tolerance", "-1"}));
    REQUIRE(negative.error == "latte absorb: --tolerance must be 0 (the dtype's default) or positive, got -1");
    REQUIRE(negative.stdout_text.empty());
}

TEST_CASE("latte decode exits 1 when its check is above the tolerance and 0 within it", "[experiments][decode]") {
    for (const char* dtype : {"f32", "f64"}) {
        CAPTURE(dtype);
        const auto base = with(kSmallDecode, {"--dtype", dtype});
        const test::CommandOutcome ok = test::run_command(cmd_decode, "decode", base);
        CHECK(ok.error.empty());
        CHECK(ok.rc == 0);
        CHECK(ok.stdout_text.find("check: decoded outputs vs the full causal forward") != std::string::npos);
        const test::CommandOutcome tight =
            test::run_command(cmd_decode, "decode", with(base, {"--tolerance", "1e-300"}));
        CHECK(tight.error.empty());
        CHECK(tight.rc == 1);
    }
    const test::CommandOutcome unchecked =
        test::run_command(cmd_decode, "decode", with(kSmallDecode, {"--no-check", "--tolerance", "1e-3"}));
    REQUIRE(unchecked.error == "latte decode: --tolerance has no effect with --no-check");
    REQUIRE(unchecked.stdout_text.empty());
}
