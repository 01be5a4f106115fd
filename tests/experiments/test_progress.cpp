// Progress lines come every N steps and at least every ~10 s of wall time, with rate and ETA.
#include "experiments/progress.h"
#include "tests/support/catch_helpers.h"

using latte::experiments::Progress;

TEST_CASE("progress: a line every N steps, at the last step, and whenever 10 s passed since the last line",
          "[progress]") {
    Progress by_count(0, 100, 25, 10);
    REQUIRE_FALSE(by_count.after(1, 0.1).print);
    const Progress::Tick at25 = by_count.after(25, 2.5);
    REQUIRE(at25.print);
    REQUIRE(at25.steps_per_second == Approx(10));
    REQUIRE(at25.eta_seconds == Approx(7.5));
    REQUIRE_FALSE(by_count.after(26, 2.6).print);
    REQUIRE(by_count.after(100, 9).print);

    // By time alone (every 0): a slow run still speaks every 10 s; the clock restarts at each line.
    Progress by_time(40, 140, 0, 10);  // resumed at step 40
    REQUIRE_FALSE(by_time.after(41, 9.9).print);
    const Progress::Tick late = by_time.after(42, 10.0);
    REQUIRE(late.print);
    REQUIRE(late.steps_per_second == Approx(0.2));  // this run's 2 steps in 10 s
    REQUIRE(late.eta_seconds == Approx(490));
    REQUIRE_FALSE(by_time.after(43, 19.9).print);
    REQUIRE(by_time.after(44, 20.0).print);
    REQUIRE_FALSE(by_time.after(140, 21).print);  // no count: the last step is not special
    // A count and time together: whichever comes first.
    Progress both(0, 1000, 100, 10);
    REQUIRE(both.after(7, 11).print);
    REQUIRE_FALSE(both.after(8, 12).print);
    REQUIRE(both.after(100, 13).print);
}
