// The CUDA device API for users, like torch.cuda: whether a GPU is usable, how many, waiting for
// queued work, and the TF32 switch. Works (and says why not) in a build without CUDA.
#pragma once
#include <string>

namespace latte::cuda {

// True when latte was built with CUDA and a device can be used; otherwise `why_not` (if given)
// gets the reason, e.g. "CUDA driver version is insufficient for CUDA runtime version".
bool is_available(std::string* why_not = nullptr);
int device_count();  // 0 when not available
// Blocks until every kernel queued on device `index` has finished (for timing).
void synchronize(int index = 0);
// TF32 tensor-core math for float32 matmuls (cuBLAS). Off by default, as in PyTorch.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace latte::cuda
