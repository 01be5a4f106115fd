// What data-parallel ranks compare before training: every flag as the run uses it, files by
// their contents (the 2-rank refusals themselves run in scripts/check-mpi-train.sh).
#include <fstream>
#include <sys/stat.h>

#include "experiments/rank_agreement.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"
#include "tests/support/run_command.h"

using namespace latte;
using namespace latte::experiments;

namespace {


void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

}  // namespace

TEST_CASE("ranks compare every flag the run uses, and files by content", "[rank-agreement]") {
    const test::ScratchDir s("rank_agreement");
    write(s.dir + "/a", "weights");
    write(s.dir + "/a_copy", "weights");
    write(s.dir + "/b", "weightz");
    REQUIRE(file_digest(s.dir + "/a", "t") == file_digest(s.dir + "/a_copy", "t"));
    REQUIRE(file_digest(s.dir + "/a", "t") != file_digest(s.dir + "/b", "t"));
    REQUIRE(file_digest(s.dir + "/a", "t").rfind("size 7, fnv1a64 ", 0) == 0);
    REQUIRE(file_digest("", "t").empty());
    REQUIRE_THROWS_WITH(file_digest(s.dir + "/missing", "latte train"),
                        Catch::Contains("latte train: cannot read '" + s.dir + "/missing'"));

    const std::vector<cli::Flag> flags{{"lr", "0.003", ""}, {"out", "runs", ""}, cli::file_flag("init", ""),
                                       {"fast", "false", "", true}};
    const std::vector<RunItem> items = run_items(test::parse_args(flags, {"--init", s.dir + "/a", "--fast"}), {"out"}, {"init"});
    REQUIRE(items.size() == 3);  // --out left out
    REQUIRE(items[0].name == "--lr");
    REQUIRE(items[0].value == "0.003");  // defaults count: every rank must use the same
    REQUIRE(items[1].value == file_digest(s.dir + "/a", "t"));
    REQUIRE(items[2].value == "on");
    check_ranks_agree(items, "latte x");  // one process: nothing to compare, no collective
    // A FIFO is refused rather than opened (opening one blocks until a writer comes); on one rank
    // nothing is read at all.
    const std::string fifo = s.dir + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    REQUIRE_THROWS_WITH(file_digest(fifo, "latte train"), Catch::Contains("is not a regular file"));
    check_ranks_agree(test::parse_args(flags, {"--init", fifo}), {"out"}, {"init"});
}
