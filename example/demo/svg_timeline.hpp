// A small SVG 1.1 writer for the demo's timeline: stacked panels of line series over time.
#ifndef ASIO_BLOCKING_DEMO_SVG_TIMELINE_HPP
#define ASIO_BLOCKING_DEMO_SVG_TIMELINE_HPP

#include <string>
#include <vector>

namespace demo {

struct series {
    std::string name;
    std::string colour;
    std::vector<double> values; // one per sample time
};

struct panel {
    std::string title;
    std::string unit;
    std::vector<series> lines;
};

/// A stretch of time to shade in every panel (the demo's event-loop stalls).
struct span {
    double start_s, end_s;
    std::string label;
};

/// Writes panels stacked vertically over a shared time axis (seconds) as a standalone SVG 1.1
/// document: axes with ticks and labels, a legend per panel, optional vertical markers, and
/// optional shaded spans (class "stall").
std::string render_timeline(const std::string& title, const std::vector<double>& times_s,
                            const std::vector<panel>& panels,
                            const std::vector<std::pair<double, std::string>>& markers,
                            const std::vector<span>& spans = {});

} // namespace demo

#endif
