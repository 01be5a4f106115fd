// The MPI suite: every rank runs every test case in the same order, so their collectives match.
// Run with `mpirun -np 2 latte_mpi_tests` (CTest does). Without mpirun it runs as a world of one.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "core/distributed.h"

int main(int argc, char** argv) {
    latte::distributed::init_process_group(std::chrono::seconds(60));
    const int failed = Catch::Session().run(argc, argv);
    latte::distributed::destroy_process_group();
    return failed == 0 ? 0 : 1;
}
