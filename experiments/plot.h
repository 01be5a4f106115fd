// Loss curves as CSV and as a self-contained SVG line chart (log-scale y), each file written
// atomically (core/atomic_file.h): complete or not there, never cut.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace latte::plot {

using Curve = std::pair<std::string, std::vector<double>>;  // label, value per step

void write_csv(const std::string& path, const std::vector<Curve>& curves);
void write_svg(const std::string& path, const std::string& title, const std::vector<Curve>& curves);

}  // namespace latte::plot
