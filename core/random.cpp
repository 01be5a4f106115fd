#include "core/random.h"

#include "core/error.h"
#include "core/random_counter.h"

namespace latte {

void Generator::manual_seed(uint64_t seed) {
    state_ = seed;
    has_spare_ = false;
}

uint64_t Generator::next_u64() {
    const uint64_t z = random::draw(state_, 1);
    state_ += random::kGolden;
    return z;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
    if (has_spare_) return take_spare();
    double c = 0, s = 0;
    random::normal_pair(state_, 0, c, s);
    skip(2);
    set_spare(s);
    return c;
}

void Generator::skip(uint64_t draws) { state_ += draws * random::kGolden; }

double Generator::take_spare() {
    LATTE_CHECK(has_spare_, "Generator: no spare normal to take");
    has_spare_ = false;
    return spare_;
}

void Generator::set_spare(double value) {
    spare_ = value;
    has_spare_ = true;
}

void Generator::set_state(const GeneratorState& s) {
    state_ = s.counter;
    has_spare_ = s.has_spare;
    spare_ = s.spare;
}

}  // namespace latte
