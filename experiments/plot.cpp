#include "experiments/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/atomic_file.h"
#include "experiments/log_axis.h"

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
    const double plot_height = height - top - bottom;
    auto drawable = [](double v) { return v > 0 && std::isfinite(v); };
    double lo = INFINITY, hi = -INFINITY;
    size_t steps = 1;
    for (const auto& [_, values] : curves) {
        steps = std::max(steps, values.size());
        for (double v : values)
            if (drawable(v)) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
    }
    if (!(lo <= hi)) lo = hi = 1;  // nothing to draw: an axis around 1
    const LogAxis axis = fit_log_axis(lo, hi, plot_height, 16);
    auto x_of = [&](size_t i) { return left + (width - left - right) * double(i) / double(std::max<size_t>(steps - 1, 1)); };
    auto y_of = [&](double v) { return top + plot_height - axis.height(v, plot_height); };
    std::ostringstream out;
    out.precision(10);
    out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
        << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    out << "<text x='" << width / 2 << "' y='22' text-anchor='middle' font-size='15'>" << title << "</text>\n";
    out << "<rect class='plot' x='" << left << "' y='" << top << "' width='" << width - left - right << "' height='"
        << plot_height << "' fill='none' stroke='#999'/>\n";
    for (double tick : axis.ticks) {
        const double y = y_of(tick);
        char label[32];
        std::snprintf(label, sizeof label, "%.10g", tick);
        out << "<line class='grid' x1='" << left << "' x2='" << width - right << "' y1='" << y << "' y2='" << y
            << "' stroke='#ddd'/><text class='tick' x='" << left - 6 << "' y='" << y + 4 << "' text-anchor='end'>"
            << label << "</text>\n";
    }
    out << "<text x='" << (left + width - right) / 2 << "' y='" << height - 12 << "' text-anchor='middle'>step (0 to "
        << steps - 1 << ")</text>\n<text x='16' y='" << height / 2 << "' transform='rotate(-90 16 " << height / 2
        << ")' text-anchor='middle'>loss (log scale)</text>\n";
    const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
    for (size_t c = 0; c < curves.size(); ++c) {
        const auto& [label, values] = curves[c];
        const char* color = colors[c % 6];
        // A value a log axis cannot show (<= 0, nan, inf) breaks the line: one polyline per stretch.
        size_t hidden = 0;
        bool open = false;
        for (size_t i = 0; i < values.size(); ++i) {
            if (!drawable(values[i])) {
                ++hidden;
                if (open) out << "'/>\n";
                open = false;
                continue;
            }
            if (!open)
                out << "<polyline class='curve' fill='none' stroke='" << color << "' stroke-width='1.5' points='";
            open = true;
            out << x_of(i) << "," << y_of(values[i]) << " ";
        }
        if (open) out << "'/>\n";
        out << "<text x='" << width - right + 10 << "' y='" << top + 18 * double(c + 1) << "' fill='" << color << "'>"
            << label;
        if (hidden) out << " (" << hidden << " not shown: &lt;= 0 or not finite)";
        out << "</text>\n";
    }
    out << "</svg>\n";
    write_file_atomically(path, out.str(), "plot");
}

}  // namespace latte::plot
