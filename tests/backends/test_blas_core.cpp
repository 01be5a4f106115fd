// latte loads OpenBLAS itself so that its kernels fit the CPU: the core it runs must be the one
// cpuid calls for (or the user's OPENBLAS_CORETYPE). A check of logic, not of time.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include <catch2/catch.hpp>

#include "backends/cpu/blas.h"
#include "backends/cpu/cpu_features.h"
#include "core/distributed.h"
#include "experiments/commands.h"
#include "ops/ops.h"

using namespace latte;
using namespace latte::cpu;

namespace {
std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}
}  // namespace

TEST_CASE("the preferred OpenBLAS core follows the CPU's features", "[backends][blas]") {
    CpuFeatures f;
    f.vendor = "intel";
    REQUIRE(preferred_openblas_core(f) == "");
    f.avx2 = f.fma = true;
    REQUIRE(preferred_openblas_core(f) == "Haswell");
    f.vendor = "amd";
    REQUIRE(preferred_openblas_core(f) == "Zen");
    f.avx512 = true;
    REQUIRE(preferred_openblas_core(f) == "SkylakeX");
    f.avx512_bf16 = true;
    REQUIRE(preferred_openblas_core(f) == "Cooperlake");
}

TEST_CASE("the loaded OpenBLAS runs the core that fits this CPU", "[backends][blas]") {
    matmul(ones({2, 2}), ones({2, 2}));  // loads OpenBLAS if nothing has yet
    const BlasInfo info = blas_info();
    const CpuFeatures f = cpu_features();
    INFO("CPU " << f.model << ", OpenBLAS " << info.library << ": core " << info.core << ", asked for '"
                << info.requested_core << "', config " << info.config);
    REQUIRE_FALSE(info.library.empty());
    if (!info.requested_core.empty()) {
        const char* env = std::getenv("OPENBLAS_CORETYPE");  // latte set it (or the user did) before loading
        REQUIRE(env != nullptr);
        REQUIRE(info.requested_core == env);
        REQUIRE(lower(info.core) == lower(info.requested_core));
    }
    // Never a generic core on a CPU with AVX2 and FMA, unless the user asked for one.
    if (info.requested_core == preferred_openblas_core(f) && f.avx2 && f.fma)
        REQUIRE(lower(info.core) != "prescott");
}

TEST_CASE("latte info names the CPU, the core in use and the threads", "[backends][blas][cli]") {
    std::ostringstream captured;
    std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
    char prog[] = "latte", cmd[] = "info";
    char* argv[] = {prog, cmd, nullptr};
    const int rc = experiments::cmd_info(2, argv, 2);
    std::cout.rdbuf(old);
    REQUIRE(rc == 0);
    const std::string text = captured.str();
    INFO(text);
    REQUIRE_THAT(text, Catch::Contains("cpu:      " + cpu_features().model));
    REQUIRE_THAT(text, Catch::Contains("core:     " + blas_info().core + " ("));
    REQUIRE_THAT(text, Catch::Contains("threads:  "));
    REQUIRE_THAT(text, Catch::Contains("cuda:     "));
    REQUIRE_THAT(text, Catch::Contains(distributed::is_available() ? "mpi:      built in" : "mpi:      not built in"));
}
