// Mixed precision, like torch.autocast(device_type, dtype=torch.bfloat16). Inside an
// autocast::Guard(Precision::BFloat16), float32 matrix products (matmul, and so Linear and every
// projection, and the fused attention's tile products) multiply their inputs rounded to bf16,
// accumulate in float32 and give float32 results; their backward products do the same.
// Everything else stays float32: softmax (the fused attention's online softmax included), norms,
// losses, and the parameters and optimizer state (the master weights). float64 products are never
// changed.
//
// The mode belongs to the thread that creates the Guard, and nests. A product under bf16 on a
// device that cannot run it (a CPU without AVX512_BF16 or AMX, a build without oneDNN, CUDA for
// now) throws latte::Error naming the op and the reason, rather than quietly running float32.
#pragma once
#include <string>

#include "device.h"

namespace latte::autocast {

enum class Precision { Float32, BFloat16 };

class Guard {
public:
    explicit Guard(Precision precision = Precision::BFloat16);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

private:
    Precision saved_;
};

// This thread's precision for float32 products (Float32 outside any Guard).
Precision current();
// "f32" or "bf16", as the --precision flag spells it.
const char* precision_name(Precision precision);
// "f32" or "bf16" to a Precision; throws naming `where` and the text otherwise.
Precision parse_precision(const std::string& text, const std::string& where);
// Whether `device` runs bf16 products; why_not says what is missing when it does not.
bool bf16_available(Device device, std::string* why_not = nullptr);

}  // namespace latte::autocast
