// When a flag given on a resume counts as the stored one: the same number however written, but
// integers exactly (a seed past 2^53 is not its neighbour).
#include "experiments/resume_flags.h"
#include "tests/support/catch_helpers.h"

using namespace latte::experiments;

TEST_CASE("resumed flags compare integers exactly and other numbers by value", "[resume]") {
    REQUIRE(same_flag_value("3e-3", "0.003"));
    REQUIRE(same_flag_value("100", "1e2"));
    REQUIRE(same_flag_value("mla", "mla"));
    REQUIRE(!same_flag_value("mla", "gqa"));
    REQUIRE(!same_flag_value("1152921504606846976", "1152921504606846977"));  // equal as doubles
    REQUIRE(!same_flag_value("9007199254740993", "9007199254740992"));
    REQUIRE(same_flag_value("9007199254740993", "9007199254740993"));
}
