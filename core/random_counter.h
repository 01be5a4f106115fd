// The random streams as pure functions of (state, counter), so any device can compute element i
// of a randn/rand fill on its own and get what the sequential Generator would give:
//   draw j (j >= 1) after `state` is splitmix64 of state + j * golden;
//   uniform j is its top 53 bits in [0, 1);
//   Box-Muller pair p uses uniforms 2p+1 and 2p+2 and yields (cos, sin) normals.
#pragma once
#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace latte::random {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

LATTE_HOST_DEVICE inline uint64_t draw(uint64_t state, uint64_t j) {
    uint64_t z = state + j * kGolden;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

LATTE_HOST_DEVICE inline double uniform(uint64_t state, uint64_t j) {
    return static_cast<double>(draw(state, j) >> 11) * 0x1.0p-53;
}

// Uniform j scaled to [low, high) in T. Rounding low + (high - low) u to float can give high
// itself (u within 2^-25 of 1: about once in 3e7 draws), which would break code that turns the
// draw into an index; such a draw becomes the largest T below high.
template <class T>
LATTE_HOST_DEVICE inline T uniform_in(uint64_t state, uint64_t j, double low, double high) {
    using std::nextafter;
    const T v = static_cast<T>(low + (high - low) * uniform(state, j));
    return v < static_cast<T>(high) ? v : nextafter(static_cast<T>(high), static_cast<T>(low));
}

// The two standard normals of pair p. A first uniform of exactly 0 (odds 2^-53) is nudged to
// 2^-54 so that log stays finite without a data-dependent redraw.
LATTE_HOST_DEVICE inline void normal_pair(uint64_t state, uint64_t p, double& c, double& s) {
    double u1 = uniform(state, 2 * p + 1);
    if (u1 <= 0.0) u1 = 0x1.0p-54;
    const double u2 = uniform(state, 2 * p + 2);
    const double radius = sqrt(-2.0 * log(u1));
    const double angle = 6.283185307179586476925286766559 * u2;
    c = radius * cos(angle);
    s = radius * sin(angle);
}

}  // namespace latte::random
