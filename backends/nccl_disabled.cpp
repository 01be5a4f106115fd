// The build without NCCL (no CUDA, or no libnccl next to the CUDA toolkit): CUDA tensors cannot
// be communicated, and saying so is all this does.
#include "core/distributed_transport.h"
#include "core/error.h"

namespace latte::distributed_detail {

bool nccl_compiled_in() { return false; }

std::unique_ptr<Transport> make_nccl_transport(World&, int device, std::chrono::milliseconds) {
    LATTE_FAIL("distributed: a collective on a tensor on cuda:", device, " needs NCCL, and latte was built without it "
               "(it needs the CUDA backend, and libnccl.so with nccl.h in the CUDA toolkit); copy the tensor to the CPU");
}

}  // namespace latte::distributed_detail
