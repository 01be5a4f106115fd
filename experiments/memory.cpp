#include "experiments/memory.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unistd.h>

#include "core/error.h"
#include "nn/attention.h"

namespace latte::experiments {
namespace {

// "512.0 MiB", "25.8 GiB", ... up to EiB, then "3.2e+20 EiB": never cut, whatever the size.
std::string human(double bytes) {
    static const char* const units[] = {"MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = bytes / double(1 << 20);
    size_t unit = 0;
    while (unit + 1 < std::size(units) && value >= 1024) {
        value /= 1024;
        ++unit;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, value < 1e4 ? "%.1f %s" : "%.1e %s", value, units[unit]);
    return buf;
}

}  // namespace

double available_memory_bytes() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    double kib = 0;
    std::string unit;
    while (meminfo >> key >> kib >> unit)
        if (key == "MemAvailable:") return kib * 1024;
    return double(::sysconf(_SC_AVPHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
}

void check_memory(const std::string& who, double bytes, const std::string& what, double available) {
    LATTE_CHECK(bytes <= available, who, ": needs about ", human(bytes), " of memory (", what, "), more than the ",
                human(available), " available");
}

double attention_activation_elements(const AttentionSizes& s, size_t dtype_bytes) {
    double scores = s.B * s.H * s.L1 * s.L2;
    const double limit = double(nn::attention_memory_limit());
    if (limit >= 0 && scores * double(dtype_bytes) > limit) scores = s.B * s.H * std::min(s.L1, 128.0) * s.L2;
    return s.B * s.L1 * s.D * 2 + s.B * s.L2 * s.D            // x, output; y
           + s.B * s.L1 * s.width * 2 + s.B * s.L2 * s.width * 2  // q, heads' output; k, v
           + s.B * s.L2 * s.latent + 2 * scores;
}

}  // namespace latte::experiments
