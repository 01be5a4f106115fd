// Memory estimates checked before a command starts, so a run too big for the machine fails at
// once, saying what it needs and what there is, instead of being killed by the kernel mid-way.
#pragma once
#include <cstddef>
#include <string>

namespace latte::experiments {

// Bytes the machine can give now: MemAvailable from /proc/meminfo, else free physical pages.
double available_memory_bytes();
// Throws "<who>: needs about 25.8 GiB of memory (<what>), more than the 22.1 GiB available".
void check_memory(const std::string& who, double bytes, const std::string& what,
                  double available = available_memory_bytes());

// One attention forward's sizes, as doubles so estimates of absurd flags cannot overflow.
struct AttentionSizes {
    double B = 1, L1 = 1, L2 = 1, D = 1;  // batch, lengths, width (D1 = D2)
    double H = 1, width = 1;              // heads, H*d (projections q, k, v, o)
    double latent = 0;                    // MLA's r (0 for MHA/GQA)
};
// Elements one forward keeps for its backward: x, y, q, k, v, the latent, the scores and their
// softmax (only one 128-row block of each when they exceed nn::attention_memory_limit(), as the
// chunked form then runs), the heads' output and the output.
double attention_activation_elements(const AttentionSizes& s, size_t dtype_bytes);

}  // namespace latte::experiments
