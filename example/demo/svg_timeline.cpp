// The demo's SVG writer: no plotting dependency, just polylines, ticks and text.
#include "svg_timeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace demo {
namespace {

std::string escape(const std::string& s)
{
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

// A "nice" tick step giving about `count` ticks over [0, max].
double tick_step(double max, int count)
{
    if (max <= 0)
        return 1;
    const double raw = max / count;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (raw <= m * magnitude)
            return m * magnitude;
    return 10 * magnitude;
}

std::string number(double v)
{
    char buf[32];
    if (v == std::floor(v) && std::fabs(v) < 1e9)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else
        std::snprintf(buf, sizeof buf, "%.2g", v);
    return buf;
}

} // namespace

std::string render_timeline(const std::string& title, const std::vector<double>& times_s,
                            const std::vector<panel>& panels,
                            const std::vector<std::pair<double, std::string>>& markers, const std::vector<span>& spans)
{
    const double width = 960, left = 70, right = 170, top = 50, panel_h = 170, gap = 60;
    const double plot_w = width - left - right;
    const double height = top + panels.size() * (panel_h + gap) + 20;
    const double t_max = times_s.empty() ? 1 : std::max(times_s.back(), 1e-3);

    std::ostringstream svg;
    svg << "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
        << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width << "\" height=\"" << height
        << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
        << "<title>" << escape(title) << "</title>\n"
        << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"white\"/>\n"
        << "<text x=\"" << left << "\" y=\"28\" font-size=\"16\" font-weight=\"bold\">" << escape(title) << "</text>\n";

    const double t_step = tick_step(t_max, 10);
    for (std::size_t p = 0; p < panels.size(); ++p) {
        const panel& pn = panels[p];
        const double y0 = top + p * (panel_h + gap); // panel top
        double v_max = 0;
        for (const series& s : pn.lines)
            for (double v : s.values)
                v_max = std::max(v_max, v);
        const double v_step = tick_step(v_max > 0 ? v_max : 1, 4);
        v_max = std::max(v_step, std::ceil((v_max > 0 ? v_max : 1) / v_step) * v_step);
        auto x_of = [&](double t) {
            return left + plot_w * t / t_max;
        };
        auto y_of = [&](double v) {
            return y0 + panel_h - panel_h * v / v_max;
        };

        svg << "<g class=\"panel\" id=\"panel" << p << "\">\n"
            << "<text x=\"" << left << "\" y=\"" << y0 - 8 << "\" font-weight=\"bold\">" << escape(pn.title) << " ("
            << escape(pn.unit) << ")</text>\n";
        // Grid and y ticks.
        for (double v = 0; v <= v_max + v_step / 2; v += v_step) {
            svg << "<line x1=\"" << left << "\" y1=\"" << y_of(v) << "\" x2=\"" << left + plot_w << "\" y2=\""
                << y_of(v) << "\" stroke=\"#e4e4e4\"/>\n"
                << "<text x=\"" << left - 6 << "\" y=\"" << y_of(v) + 4 << "\" text-anchor=\"end\">" << number(v)
                << "</text>\n";
        }
        // x ticks.
        for (double t = 0; t <= t_max + t_step / 2; t += t_step)
            svg << "<line x1=\"" << x_of(t) << "\" y1=\"" << y0 + panel_h << "\" x2=\"" << x_of(t) << "\" y2=\""
                << y0 + panel_h + 4 << "\" stroke=\"black\"/>\n"
                << "<text x=\"" << x_of(t) << "\" y=\"" << y0 + panel_h + 16 << "\" text-anchor=\"middle\">"
                << number(t) << "</text>\n";
        svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << y0 + panel_h + 32
            << "\" text-anchor=\"middle\">time (s)</text>\n";
        // Axes.
        svg << "<polyline fill=\"none\" stroke=\"black\" points=\"" << left << ',' << y0 << ' ' << left << ','
            << y0 + panel_h << ' ' << left + plot_w << ',' << y0 + panel_h << "\"/>\n";
        // Shaded spans, at least a pixel wide so that short stalls show.
        for (const span& sp : spans)
            svg << "<rect class=\"stall\" x=\"" << x_of(sp.start_s) << "\" y=\"" << y0 << "\" width=\""
                << std::max(1.0, x_of(sp.end_s) - x_of(sp.start_s)) << "\" height=\"" << panel_h
                << "\" fill=\"#d62728\" fill-opacity=\"0.25\"><title>" << escape(sp.label) << "</title></rect>\n";
        // Markers.
        for (const auto& [t, label] : markers)
            svg << "<line x1=\"" << x_of(t) << "\" y1=\"" << y0 << "\" x2=\"" << x_of(t) << "\" y2=\"" << y0 + panel_h
                << "\" stroke=\"#999\" stroke-dasharray=\"4,3\"/>\n";
        // Series and legend.
        for (std::size_t i = 0; i < pn.lines.size(); ++i) {
            const series& s = pn.lines[i];
            svg << "<polyline class=\"series\" data-name=\"" << escape(s.name) << "\" fill=\"none\" stroke=\""
                << s.colour << "\" stroke-width=\"1.5\" points=\"";
            for (std::size_t k = 0; k < s.values.size() && k < times_s.size(); ++k)
                svg << x_of(times_s[k]) << ',' << y_of(s.values[k]) << ' ';
            svg << "\"/>\n";
            const double ly = y0 + 14 + 18 * i;
            svg << "<line x1=\"" << left + plot_w + 14 << "\" y1=\"" << ly - 4 << "\" x2=\"" << left + plot_w + 34
                << "\" y2=\"" << ly - 4 << "\" stroke=\"" << s.colour << "\" stroke-width=\"3\"/>\n"
                << "<text x=\"" << left + plot_w + 40 << "\" y=\"" << ly << "\">" << escape(s.name) << "</text>\n";
        }
        svg << "</g>\n";
    }
    for (const auto& [t, label] : markers)
        svg << "<text x=\"" << left + plot_w * t / t_max + 3 << "\" y=\"" << top + 12 << "\" fill=\"#666\">"
            << escape(label) << "</text>\n";
    svg << "</svg>\n";
    return svg.str();
}

} // namespace demo
