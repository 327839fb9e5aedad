// A snapshot of one lane: how many of its calls run, wait and have finished.
#ifndef ASIO_BLOCKING_LANE_METRICS_HPP
#define ASIO_BLOCKING_LANE_METRICS_HPP

#include <cstddef>
#include <cstdint>
#include <string>

namespace asio_blocking {

struct lane_metrics {
    std::string name;
    std::size_t limit = 0;
    std::size_t running = 0;      ///< On a worker now.
    std::size_t admitted = 0;     ///< Running, or queued in the pool (never above `limit`).
    std::size_t waiting = 0;      ///< Held back by the limit, not occupying the pool.
    std::size_t peak_running = 0; ///< Highest `running` seen.
    std::uint64_t completed = 0;  ///< Ran to the end (returned or threw).
};

} // namespace asio_blocking

#endif
