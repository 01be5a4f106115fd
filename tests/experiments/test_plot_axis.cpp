// loss.svg's log y-axis, checked on the SVG the code writes: each label sits where its value falls on
// a log scale through the other labels, gridlines lie inside the plot, labels do not crowd, and the
// curve fills the plot, for data spanning part of a decade, many decades, a constant, or holding
// values a log axis cannot show (<= 0, nan).
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "experiments/plot.h"
#include "tests/support/catch_helpers.h"
#include "tests/support/fixtures.h"

using namespace latte;

namespace {

struct Svg {
    double plot_top = 0, plot_height = 0;
    std::vector<double> grid_y;                    // each gridline's y
    std::vector<std::pair<double, double>> ticks;  // (label's value, its gridline's y)
    std::vector<std::vector<double>> curves_y;     // each polyline's point ys
    std::string text;
};

Svg parse(const std::string& path) {
    std::ifstream in(path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    Svg svg;
    svg.text = buffer.str();
    std::smatch m;
    const std::regex plot("<rect class='plot' x='[^']*' y='([^']*)' width='[^']*' height='([^']*)'");
    REQUIRE(std::regex_search(svg.text, m, plot));
    svg.plot_top = std::stod(m[1]);
    svg.plot_height = std::stod(m[2]);
    const std::regex tick("<line class='grid' x1='[^']*' x2='[^']*' y1='([^']*)' y2='([^']*)'[^>]*/>"
                          "<text class='tick'[^>]*>([^<]*)</text>");
    for (auto it = std::sregex_iterator(svg.text.begin(), svg.text.end(), tick); it != std::sregex_iterator(); ++it) {
        REQUIRE((*it)[1] == (*it)[2]);  // horizontal
        svg.grid_y.push_back(std::stod((*it)[1]));
        svg.ticks.emplace_back(std::stod((*it)[3]), svg.grid_y.back());
    }
    const std::regex curve("<polyline class='curve'[^>]* points='([^']*)'");
    for (auto it = std::sregex_iterator(svg.text.begin(), svg.text.end(), curve); it != std::sregex_iterator(); ++it) {
        std::vector<double> ys;
        std::istringstream points((*it)[1].str());
        for (std::string point; points >> point;) ys.push_back(std::stod(point.substr(point.find(',') + 1)));
        svg.curves_y.push_back(ys);
    }
    return svg;
}

// Writes `values` as one curve and checks the axis; returns the parsed SVG.
Svg check_axis(const std::vector<double>& values) {
    const std::string path = test::temp_path("axis.svg");
    plot::write_svg(path, "t", {{"loss", values}});
    const Svg svg = parse(path);
    std::remove(path.c_str());
    INFO(svg.text);
    // At least two labels, so the scale is pinned by the labels themselves.
    REQUIRE(svg.ticks.size() >= 2);
    REQUIRE(svg.ticks.size() <= 10);
    const auto [v0, y0] = svg.ticks.front();
    const auto [v1, y1] = svg.ticks.back();
    const double slope = (y1 - y0) / (std::log10(v1) - std::log10(v0));  // px per decade (negative: up)
    REQUIRE(slope < 0);
    auto y_of = [&](double v) { return y0 + slope * (std::log10(v) - std::log10(v0)); };
    for (size_t i = 0; i < svg.ticks.size(); ++i) {
        const auto [v, y] = svg.ticks[i];
        CAPTURE(v, y);
        REQUIRE(v > 0);
        REQUIRE(std::abs(y - y_of(v)) < 0.01);  // the label sits at its value's height
        REQUIRE(y >= svg.plot_top - 1e-9);
        REQUIRE(y <= svg.plot_top + svg.plot_height + 1e-9);
        if (i > 0) REQUIRE(svg.ticks[i - 1].second - y >= 14);  // labels (12 px font) never overlap
    }
    // Every drawn point is at its value's height on the same scale.
    std::vector<double> drawn;
    for (double v : values)
        if (v > 0 && std::isfinite(v)) drawn.push_back(v);
    std::vector<double> ys;
    for (const auto& curve : svg.curves_y) ys.insert(ys.end(), curve.begin(), curve.end());
    REQUIRE(ys.size() == drawn.size());
    for (size_t i = 0; i < ys.size(); ++i) REQUIRE(std::abs(ys[i] - y_of(drawn[i])) < 0.01);
    return svg;
}

// From `hi` down to `lo`, geometrically, with a wiggle.
std::vector<double> falling(double hi, double lo, int n = 60) {
    std::vector<double> v;
    for (int i = 0; i < n; ++i) {
        const double t = double(i) / double(n - 1);
        v.push_back(hi * std::pow(lo / hi, t) * (i % 3 == 1 && i + 1 < n ? 1.02 : 1.0));
    }
    return v;
}

double span_of(const Svg& svg) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& curve : svg.curves_y)
        for (double y : curve) {
            lo = std::min(lo, y);
            hi = std::max(hi, y);
        }
    return (hi - lo) / svg.plot_height;
}

}  // namespace

TEST_CASE("loss.svg: labels at their true log positions, curve filling the plot, any data range", "[plot]") {
    SECTION("a third of a decade (0.13 to 0.39): the old axis put its 1e-1 line at 0.13's height") {
        const Svg svg = check_axis(falling(0.39, 0.13));
        REQUIRE(span_of(svg) > 0.85);
        REQUIRE(svg.ticks.size() >= 4);  // a sub-decade range still gets several labels
    }
    SECTION("a few percent (1.00 to 1.03)") { REQUIRE(span_of(check_axis(falling(1.03, 1.0))) > 0.85); }
    SECTION("1.5 decades") { REQUIRE(span_of(check_axis(falling(20, 0.6))) > 0.85); }
    SECTION("12 decades") {
        const Svg svg = check_axis(falling(1e3, 1e-9));
        REQUIRE(span_of(svg) > 0.85);
        for (const auto& [v, _] : svg.ticks) REQUIRE(std::abs(std::log10(v) - std::round(std::log10(v))) < 1e-9);
    }
    SECTION("300 decades, near the ends of double") { REQUIRE(span_of(check_axis(falling(1e150, 1e-150))) > 0.85); }
    SECTION("data at double's ends (1e-316 to 1e300): the axis stays finite and labelled") {
        const Svg svg = check_axis(falling(1e300, 1e-316));
        REQUIRE(!svg.ticks.empty());
        for (const auto& curve : svg.curves_y)
            for (double y : curve) REQUIRE(std::isfinite(y));
    }
    SECTION("constant data: a flat line in the middle") {
        const Svg svg = check_axis(std::vector<double>(30, 0.25));
        for (double y : svg.curves_y.at(0)) REQUIRE(std::abs(y - (svg.plot_top + svg.plot_height / 2)) < 0.01);
    }
    SECTION("values <= 0 or not finite leave gaps, counted in the legend") {
        std::vector<double> v = falling(2, 0.05, 40);
        v[10] = 0;
        v[11] = -1;
        v[25] = std::nan("");
        const Svg svg = check_axis(v);
        REQUIRE(svg.curves_y.size() == 3);  // 0-9, 12-24, 26-39
        REQUIRE(span_of(svg) > 0.85);
        REQUIRE_THAT(svg.text, Catch::Contains(">loss (3 not shown: &lt;= 0 or not finite)</text>"));
    }
    SECTION("nothing drawable: an axis, no curve") {
        const Svg svg = check_axis({0.0, std::nan("")});
        REQUIRE(svg.curves_y.empty());
    }
}

TEST_CASE("loss.svg: several curves share one axis fitted to all of them", "[plot]") {
    const std::string path = test::temp_path("axis_two.svg");
    plot::write_svg(path, "t", {{"a", falling(0.4, 0.2)}, {"b", falling(4, 0.02)}});
    const Svg svg = parse(path);
    std::remove(path.c_str());
    REQUIRE(svg.curves_y.size() == 2);
    REQUIRE(span_of(svg) > 0.85);
    const auto [v0, y0] = svg.ticks.front();
    const auto [v1, y1] = svg.ticks.back();
    const double slope = (y1 - y0) / (std::log10(v1) - std::log10(v0));
    REQUIRE(std::abs(svg.curves_y[0].front() - (y0 + slope * (std::log10(0.4) - std::log10(v0)))) < 0.01);
}
