// The [cuda] suite's runner. Without a usable GPU it prints why and exits 77, which CTest
// counts as skipped (SKIP_RETURN_CODE), never as passed. Test cases run in declaration order
// (files in the order tests/CMakeLists.txt lists them: ops first, modules last), unless
// --order is given.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "core/cuda.h"

int main(int argc, char** argv) {
    std::string why_not;
    if (!latte::cuda::is_available(&why_not)) {
        std::printf("SKIPPED: the [cuda] tests need a GPU: %s\n", why_not.c_str());
        return 77;
    }
    std::printf("CUDA devices: %d\n", latte::cuda::device_count());
    Catch::Session session;
    session.configData().runOrder = Catch::RunTests::InDeclarationOrder;  // the default, made explicit
    const int parsed = session.applyCommandLine(argc, argv);
    if (parsed != 0) return parsed;
    return session.run();
}
