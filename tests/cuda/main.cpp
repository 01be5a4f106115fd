// The [cuda] suite's runner. Without a usable GPU it prints why and exits 77, which CTest
// counts as skipped (SKIP_RETURN_CODE), never as passed.
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
    return Catch::Session().run(argc, argv);
}
