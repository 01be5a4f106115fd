// The build without MPI (LATTE_MPI=OFF, or Open MPI not found), and latte::latte, the installed
// CPU-only library: the distributed API is there and says why it cannot start.
#include "core/distributed_transport.h"
#include "core/error.h"

namespace latte::distributed_detail {

bool mpi_compiled_in() { return false; }

std::unique_ptr<World> make_mpi_world(const std::atomic<bool>&, std::chrono::milliseconds) {
    LATTE_FAIL("distributed: this latte has no MPI: it is latte::latte, the CPU-only library (link latte::full, from "
               "find_package(latte COMPONENTS full), instead), or latte was built without MPI (install libopenmpi-dev "
               "and configure with -DLATTE_MPI=ON)");
}

}  // namespace latte::distributed_detail
