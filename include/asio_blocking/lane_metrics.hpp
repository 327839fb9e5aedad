// A snapshot of one lane: how many of its calls run, wait and have finished.
#ifndef ASIO_BLOCKING_LANE_METRICS_HPP
#define ASIO_BLOCKING_LANE_METRICS_HPP

#include <asio_blocking/metrics.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace asio_blocking {

/// A consistent snapshot of one lane, taken under its pool's lock.
struct lane_metrics {
    std::string name;
    std::size_t limit = 0;
    std::size_t running = 0;      ///< On a worker now.
    std::size_t admitted = 0;     ///< Running, or queued in the pool (never above `limit`).
    std::size_t waiting = 0;      ///< Held back by the limit, not occupying the pool.
    std::size_t peak_running = 0; ///< Highest `running` seen.
    std::uint64_t completed = 0;  ///< Ran to the end (returned or threw).
};

/// Calls `visit(field, value)` for each numeric field of `m` (all but `name`), as `std::uint64_t`.
template <typename Visitor>
void for_each_field(const lane_metrics& m, Visitor&& visit)
{
    using k = metric_kind;
    using u = std::uint64_t;
    visit(metric_field{"limit", k::gauge, "Most calls of the lane admitted at once."}, u{m.limit});
    visit(metric_field{"running", k::gauge, "Calls of the lane on a worker now."}, u{m.running});
    visit(metric_field{"admitted", k::gauge, "Calls of the lane running or queued in the pool."}, u{m.admitted});
    visit(metric_field{"waiting", k::gauge, "Calls held back by the lane's limit."}, u{m.waiting});
    visit(metric_field{"peak_running", k::gauge, "Most calls of the lane running at once."}, u{m.peak_running});
    visit(metric_field{"completed", k::counter, "Calls of the lane that ran to the end (returned or threw)."},
          m.completed);
}

/// `m` as one JSON object: `name` and every numeric field.
std::string to_json(const lane_metrics& m);

} // namespace asio_blocking

#endif
