// Every metric the engine records: one aggregate of counters and two latency histograms.
#ifndef ASIO_BLOCKING_SRC_ENGINE_COUNTERS_HPP
#define ASIO_BLOCKING_SRC_ENGINE_COUNTERS_HPP

#include <asio_blocking/detail/latency_histogram.hpp>
#include <asio_blocking/detail/operation.hpp>
#include <asio_blocking/metrics.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace asio_blocking::detail {

/// Guarded by the engine's mutex; copied whole into pool_metrics.
struct engine_counters {
    pool_counters totals;
    latency_histogram queue_wait; // sampled: one call in queue_wait_sampling
    latency_histogram run_time;   // every call while calls are slow, 1 in 16 tiny ones (call_timer)

    /// One call in this many (per submitting thread) has its queue wait measured.
    static constexpr unsigned queue_wait_sampling = 16;

    static std::uint64_t to_ns(std::chrono::steady_clock::duration d) noexcept
    {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
        return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
    }

    /// A call left the pool having run (or been skipped); `counted`: not already counted as
    /// cancelled when it was abandoned; `ran`: its run time, if it was timed.
    void finished(operation::outcome outcome, bool counted,
                  std::optional<std::chrono::steady_clock::duration> ran) noexcept
    {
        if (ran && outcome != operation::outcome::skipped)
            run_time.record(to_ns(*ran));
        if (!counted)
            return;
        switch (outcome) {
        case operation::outcome::returned:
            ++totals.completed;
            break;
        case operation::outcome::threw:
            ++totals.failed;
            break;
        case operation::outcome::skipped:
            ++totals.cancelled;
            break;
        }
    }

    void queued(std::size_t now_queued) noexcept { totals.peak_queued = std::max(totals.peak_queued, now_queued); }
    void threads(std::size_t now_alive) noexcept { totals.peak_threads = std::max(totals.peak_threads, now_alive); }
};

} // namespace asio_blocking::detail

#endif
