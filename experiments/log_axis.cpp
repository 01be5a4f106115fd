#include "experiments/log_axis.h"

#include <algorithm>
#include <cmath>

namespace latte::plot {
namespace {

constexpr size_t kMaxTicks = 10;

// The values m * 10^e in [lo, hi] for every decade e and each m of `mantissas`; empty once more than
// kMaxTicks (such a set is never chosen).
std::vector<double> per_decade(double lo, double hi, const std::vector<double>& mantissas, int stride) {
    std::vector<double> ticks;
    for (int e = int(std::floor(std::log10(lo))); e <= int(std::ceil(std::log10(hi))); ++e) {
        if (((e % stride) + stride) % stride != 0) continue;
        for (double m : mantissas) {
            const double v = m * std::pow(10.0, e);
            if (v < lo || v > hi) continue;
            if (ticks.size() == kMaxTicks) return {};
            ticks.push_back(v);
        }
    }
    return ticks;
}

// The multiples of `step` in [lo, hi]; empty when more than kMaxTicks.
std::vector<double> multiples(double lo, double hi, double step) {
    const double first = std::ceil(lo / step), last = std::floor(hi / step);
    if (last - first + 1 > double(kMaxTicks)) return {};
    std::vector<double> ticks;
    for (double k = first; k <= last; ++k) ticks.push_back(k * step);
    return ticks;
}

}  // namespace

double LogAxis::height(double value, double pixels) const {
    return pixels * (std::log10(value) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
}

LogAxis fit_log_axis(double min, double max, double pixels, double min_gap) {
    double a = std::log10(min), b = std::log10(max);
    // Constant data sits mid-plot on a tenth of a decade; any other range fills the plot.
    const double span = min == max ? 0.1 / 1.08 : std::max(b - a, 0.001), middle = (a + b) / 2;
    // Within double's normal range, so that lo > 0 and hi is finite even for data at its ends.
    a = std::max(middle - span * 0.54, -307.0);
    b = std::min(middle + span * 0.54, 307.0);
    LogAxis axis;
    axis.lo = std::pow(10.0, a);
    axis.hi = std::pow(10.0, b);

    std::vector<std::vector<double>> candidates;
    for (int stride : {1, 2, 3, 4, 5, 10, 20, 50, 100}) candidates.push_back(per_decade(axis.lo, axis.hi, {1}, stride));
    candidates.push_back(per_decade(axis.lo, axis.hi, {1, 2, 5}, 1));
    candidates.push_back(per_decade(axis.lo, axis.hi, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 1));
    for (int e = int(std::ceil(b)); e >= int(std::floor(a)) - 3; --e)
        for (double m : {5.0, 2.0, 1.0}) candidates.push_back(multiples(axis.lo, axis.hi, m * std::pow(10.0, e)));
    // The set with the most ticks whose neighbours are min_gap apart; on a tie, the rounder (earlier) one.
    for (const std::vector<double>& ticks : candidates) {
        bool spaced = true;
        for (size_t i = 1; i < ticks.size(); ++i)
            spaced = spaced && axis.height(ticks[i], pixels) - axis.height(ticks[i - 1], pixels) >= min_gap;
        if (spaced && ticks.size() > axis.ticks.size()) axis.ticks = ticks;
    }
    return axis;
}

}  // namespace latte::plot
