// Explicit, seeded random generators. There is no global generator: the same seed gives the
// same numbers on every platform (our own uniform and normal transforms, not <random>'s
// implementation-defined distributions) and on every device (values are drawn on the host).
#pragma once
#include <cstdint>

namespace latte {

class Generator {
public:
    explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
    void manual_seed(uint64_t seed);
    uint64_t next_u64();   // splitmix64 stream
    double uniform();      // in [0, 1), 53 random bits
    double normal();       // standard normal, Box-Muller

private:
    uint64_t state_ = 0;
    bool has_spare_ = false;
    double spare_ = 0.0;
};

}  // namespace latte
