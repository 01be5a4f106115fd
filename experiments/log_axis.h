// A logarithmic y-axis for loss plots: its range, fitted to the data so the curve fills the plot,
// and its ticks at their true positions, chosen so labels never crowd each other.
#pragma once
#include <vector>

namespace latte::plot {

struct LogAxis {
    double lo = 0.1, hi = 1;    // the values at the bottom and at the top of the plot
    std::vector<double> ticks;  // ascending, each in [lo, hi]
    // The height above the bottom, in pixels, of `value` (> 0) on an axis `pixels` tall.
    double height(double value, double pixels) const;
};

// The axis for positive, finite data in [min, max] (min <= max), on a plot `pixels` tall: the data's
// range padded by 4% of its log span at each end (constant data: a tenth of a decade around it),
// and the tick set with the most ticks (at most 10) whose labels are at least `min_gap` pixels apart,
// from: powers of ten (every 1, 2, 3, ... decades), 1-2-5 per decade, 1 to 9 per decade, or, within
// a fraction of a decade, the multiples of 1, 2 or 5 times a power of ten.
LogAxis fit_log_axis(double min, double max, double pixels, double min_gap);

}  // namespace latte::plot
