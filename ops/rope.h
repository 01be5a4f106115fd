// Rotary position embedding (RoPE) of queries or keys.
//
// Layout: x is (B, L, H, d) (more generally (..., L, H, d)): positions along dim -3, heads along
// -2, the rotated features last; this is q or k of a (B, L, H*d) projection viewed as
// (B, L, H, d). Pairing: rotate_half, as Llama (Hugging Face) and DeepSeek: feature i is rotated
// with feature i + d/2, i < d/2. Position l (l = position_offset .. position_offset + L - 1) and
// pair i turn by the angle l * base^(-2i/d):
//   out[i]       = x[i] cos - x[i + d/2] sin
//   out[i + d/2] = x[i + d/2] cos + x[i] sin
// position_offset is the position of the first row, for decoding with a cache. The backward is
// the inverse rotation (the angle negated). The cos/sin tables are computed in double on the
// host; the rotation itself is composed from narrow, mul, add and cat.
#pragma once
#include <cstdint>
#include <string>

#include "../core/tensor.h"

namespace latte {

enum class RoPEPairing { RotateHalf, Interleaved };
std::string rope_pairing_name(RoPEPairing pairing);  // "rotate_half", "interleaved"
// Throws "<who>: ... must be rotate_half or interleaved, got 'x'".
RoPEPairing parse_rope_pairing(const std::string& name, const std::string& who = "rope");

Tensor rope(const Tensor& x, int64_t position_offset = 0, double base = 10000.0,
            RoPEPairing pairing = RoPEPairing::RotateHalf);

}  // namespace latte
