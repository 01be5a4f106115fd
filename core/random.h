// Explicit, seeded random generators. There is no global generator: the same seed gives the
// same numbers on every platform (our own uniform and normal transforms, not <random>'s
// implementation-defined distributions) and on every device: bulk fills compute each element
// from (state, counter) with core/random_counter.h, on the CPU threads or in a CUDA kernel, and
// match the sequential draws.
#pragma once
#include <cstdint>

namespace latte {

// Everything a Generator's future draws depend on, for checkpoints: restoring it continues the
// exact stream (the spare normal included).
struct GeneratorState {
    uint64_t counter = 0;
    bool has_spare = false;
    double spare = 0.0;
    bool operator==(const GeneratorState&) const = default;
};

class Generator {
public:
    explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
    void manual_seed(uint64_t seed);
    uint64_t next_u64();   // splitmix64 stream
    double uniform();      // in [0, 1), 53 random bits
    double normal();       // standard normal, Box-Muller (pairs: cos, then sin)

    // For bulk fills: draws count from counter_state(); skip() moves past `draws` of them.
    // A normal left over from a pair (the sin) is the spare the next normal() returns.
    uint64_t counter_state() const { return state_; }
    void skip(uint64_t draws);
    bool has_spare() const { return has_spare_; }
    double take_spare();
    void set_spare(double value);

    GeneratorState state() const { return {state_, has_spare_, has_spare_ ? spare_ : 0.0}; }
    void set_state(const GeneratorState& s);

private:
    uint64_t state_ = 0;
    bool has_spare_ = false;
    double spare_ = 0.0;
};

}  // namespace latte
