#include "experiments/plot.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/atomic_file.h"

namespace latte::plot {

void write_csv(const std::string& path, const std::vector<Curve>& curves) {
    std::ostringstream out;
    out << "step";
    size_t steps = 0;
    for (const auto& [label, values] : curves) {
        out << "," << label;
        steps = std::max(steps, values.size());
    }
    out << "\n";
    for (size_t i = 0; i < steps; ++i) {
        out << i;
        for (const auto& [_, values] : curves) {
            out << ",";
            if (i < values.size()) out << values[i];
        }
        out << "\n";
    }
    write_file_atomically(path, out.str(), "plot");
}

void write_svg(const std::string& path, const std::string& title, const std::vector<Curve>& curves) {
    const double width = 720, height = 420, left = 70, right = 160, top = 40, bottom = 50;
    double lo = INFINITY, hi = -INFINITY;
    size_t steps = 1;
    for (const auto& [_, values] : curves) {
        steps = std::max(steps, values.size());
        for (double v : values)
            if (v > 0 && std::isfinite(v)) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
    }
    if (!(lo < hi)) {
        lo = 1e-3;
        hi = 1;
    }
    const double llo = std::floor(std::log10(lo)), lhi = std::ceil(std::log10(hi));
    auto x_of = [&](size_t i) { return left + (width - left - right) * double(i) / double(std::max<size_t>(steps - 1, 1)); };
    auto y_of = [&](double v) {
        return top + (height - top - bottom) * (lhi - std::log10(std::max(v, lo))) / std::max(lhi - llo, 1.0);
    };
    std::ostringstream out;
    out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
        << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    out << "<text x='" << width / 2 << "' y='22' text-anchor='middle' font-size='15'>" << title << "</text>\n";
    for (double p = llo; p <= lhi; p += 1) {
        const double y = y_of(std::pow(10.0, p));
        out << "<line x1='" << left << "' x2='" << width - right << "' y1='" << y << "' y2='" << y
            << "' stroke='#ddd'/><text x='" << left - 6 << "' y='" << y + 4 << "' text-anchor='end'>1e" << p
            << "</text>\n";
    }
    out << "<text x='" << (left + width - right) / 2 << "' y='" << height - 12 << "' text-anchor='middle'>step (0 to "
        << steps - 1 << ")</text>\n<text x='16' y='" << height / 2 << "' transform='rotate(-90 16 " << height / 2
        << ")' text-anchor='middle'>loss (log scale)</text>\n";
    const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
    for (size_t c = 0; c < curves.size(); ++c) {
        const auto& [label, values] = curves[c];
        const char* color = colors[c % 6];
        out << "<polyline fill='none' stroke='" << color << "' stroke-width='1.5' points='";
        for (size_t i = 0; i < values.size(); ++i) out << x_of(i) << "," << y_of(values[i]) << " ";
        out << "'/>\n<text x='" << width - right + 10 << "' y='" << top + 18 * double(c + 1) << "' fill='" << color
            << "'>" << label << "</text>\n";
    }
    out << "</svg>\n";
    write_file_atomically(path, out.str(), "plot");
}

}  // namespace latte::plot
