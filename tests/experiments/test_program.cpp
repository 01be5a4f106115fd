// The `latte` program itself: where usage goes, exit codes, and how errors are prefixed.
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

#include "experiments/commands.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

struct Run {
    int code = 0;
    std::string out, err;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `latte args...` in-process with stdout and stderr captured.
Run run_latte(std::vector<std::string> args) {
    args.insert(args.begin(), "latte");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    const std::string out_path = test::temp_path("program_out.txt"), err_path = test::temp_path("program_err.txt");
    std::fflush(stdout);
    std::fflush(stderr);
    const int saved_out = ::dup(1), saved_err = ::dup(2);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close(out);
    ::close(err);
    Run r;
    r.code = experiments::latte_main(static_cast<int>(argv.size()), argv.data());
    std::cout.flush();
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_out, 1);
    ::dup2(saved_err, 2);
    ::close(saved_out);
    ::close(saved_err);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    std::remove(out_path.c_str());
    std::remove(err_path.c_str());
    return r;
}

}  // namespace

TEST_CASE("latte prints usage to stdout for --help and to stderr for a missing or unknown command", "[cli]") {
    const Run help = run_latte({"--help"});
    REQUIRE(help.code == 0);
    REQUIRE_THAT(help.out, Catch::StartsWith("usage: latte COMMAND [flags]"));
    REQUIRE(help.err.empty());
    const Run none = run_latte({});
    REQUIRE(none.code == 2);
    REQUIRE(none.out.empty());
    REQUIRE_THAT(none.err, Catch::StartsWith("latte: no command given\nusage: latte COMMAND [flags]"));
    const Run bogus = run_latte({"bogus"});
    REQUIRE(bogus.code == 2);
    REQUIRE(bogus.out.empty());
    REQUIRE_THAT(bogus.err, Catch::StartsWith("latte: unknown command 'bogus'\nusage: latte COMMAND [flags]"));
}

TEST_CASE("latte prefixes an error with 'latte: ' only when it does not already name the command", "[cli]") {
    const Run named = run_latte({"train", "--lr", "x"});
    REQUIRE(named.code == 1);
    REQUIRE(named.out.empty());
    REQUIRE(named.err == "latte train: --lr expects a finite number, got 'x'\n");
    const std::string missing = test::temp_path("no_such_weights.safetensors");
    std::remove(missing.c_str());
    const Run unnamed = run_latte({"decode", "--weights", missing});
    REQUIRE(unnamed.code == 1);
    REQUIRE_THAT(unnamed.err, Catch::StartsWith("latte: load_safetensors: cannot open '" + missing + "'"));
}

TEST_CASE("a bad LATTE_CUDA_CACHE_MB is refused at the start, naming the variable, even without a CUDA device",
          "[cli][env]") {
    for (const char* bad : {"xyz", "-5", "3abc", ""}) {
        INFO(bad);
        ::setenv("LATTE_CUDA_CACHE_MB", bad, 1);
        const Run r = run_latte({"info"});
        ::unsetenv("LATTE_CUDA_CACHE_MB");
        REQUIRE(r.code == 1);
        REQUIRE(r.out.empty());
        // The message the CUDA backend gives when it reads the variable (CachingAllocator::limit_from_env).
        REQUIRE(r.err == std::string("latte: LATTE_CUDA_CACHE_MB must be an integer from 0 to 1099511627776 (MiB of "
                                     "memory cache; 0 turns the cache off), got '") +
                             bad + "'\n");
    }
    ::setenv("LATTE_CUDA_CACHE_MB", "64", 1);
    const Run fine = run_latte({"--help"});
    ::unsetenv("LATTE_CUDA_CACHE_MB");
    REQUIRE(fine.code == 0);
}
