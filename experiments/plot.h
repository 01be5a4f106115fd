// Loss curves as CSV and as a self-contained SVG line chart (log-scale y), each file written
// atomically (core/atomic_file.h): complete or not there, never cut.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace latte::plot {

using Curve = std::pair<std::string, std::vector<double>>;  // label, value per step

void write_csv(const std::string& path, const std::vector<Curve>& curves);
// The y-axis is logarithmic (experiments/log_axis.h), fitted to the curves' positive, finite values;
// a value it cannot show (<= 0, nan or inf) leaves a gap in its curve, and the legend counts them.
// Gridlines are <line class='grid'>, their labels <text class='tick'>, curves <polyline class='curve'>.
void write_svg(const std::string& path, const std::string& title, const std::vector<Curve>& curves);

}  // namespace latte::plot
