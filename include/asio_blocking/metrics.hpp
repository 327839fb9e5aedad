// A snapshot of a blocking_pool's state and history: gauges, counters and latency summaries.
#ifndef ASIO_BLOCKING_METRICS_HPP
#define ASIO_BLOCKING_METRICS_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace asio_blocking {

/// Percentiles of a latency distribution, read from log-scale histogram buckets (each bucket
/// spans 1/8 of a power of two, so a percentile is exact to within 12.5%; `max` is exact).
struct latency_summary {
    std::uint64_t count = 0;
    std::chrono::nanoseconds p50{0};
    std::chrono::nanoseconds p90{0};
    std::chrono::nanoseconds p99{0};
    std::chrono::nanoseconds max{0};
};

/// A consistent snapshot of a pool, taken under the pool's lock.
/**
 * Every submitted call ends in exactly one of `completed`, `failed`, `cancelled`, `rejected`
 * and `expired`, so once the pool is quiescent (`queued == busy_threads == 0`):
 * `completed + failed + cancelled + rejected + expired == submitted`.
 * Plain `post`/`execute` work counts too (a function that throws counts as `failed`).
 */
struct pool_metrics {
    // Gauges.
    std::size_t threads = 0;                         ///< Worker threads alive.
    std::size_t idle_threads = 0;                    ///< Of those, waiting for work.
    std::size_t busy_threads = 0;                    ///< Of those, running a call (including abandoned ones).
    std::size_t queued = 0;                          ///< Calls admitted and waiting for a worker.
    std::array<std::size_t, 3> queued_by_priority{}; ///< `queued`, indexed by `priority`.
    std::size_t waiting_admission = 0;               ///< Calls waiting for room in a full queue.
    std::size_t waiting_in_lanes = 0;                ///< Calls held back by their lane's limit.
    std::size_t outstanding_work = 0;                ///< Tracked executors and pending calls (join waits for 0).
    std::size_t effective_max_threads = 0;           ///< `max_threads`, lowered to what the OS lets the pool start.
    std::size_t cpu_bound_running = 0;               ///< Running calls judged CPU-bound (from their CPU time).

    // Counters since construction.
    std::uint64_t submitted = 0; ///< Every submission, including refused ones.
    std::uint64_t completed = 0; ///< Ran and returned (or the posted function returned).
    std::uint64_t failed = 0;    ///< Ran and threw.
    std::uint64_t cancelled = 0; ///< Cancelled, aborted by stop(), or abandoned while running.
    std::uint64_t abandoned = 0; ///< Of `cancelled`: completed early while `fn` went on running.
    std::uint64_t rejected = 0;  ///< Refused at submission: queue full, or pool stopped.
    std::uint64_t expired = 0;   ///< Queue deadline passed before the call started.
    std::uint64_t threads_started = 0;
    std::uint64_t threads_retired = 0;
    std::uint64_t thread_start_failures = 0;
    std::uint64_t hook_failures = 0; ///< on_thread_start/on_thread_stop calls that threw.
    std::size_t peak_threads = 0;
    std::size_t peak_queued = 0;

    latency_summary queue_wait; ///< Submission (or admission) to start, of calls that started.
    latency_summary run_time;   ///< Start to return, of calls that ran.
};

/// Writes a compact one-line, human-readable form of `m`.
std::ostream& operator<<(std::ostream& os, const pool_metrics& m);

/// `m` as one JSON object with stable field names; durations are in nanoseconds.
std::string to_json(const pool_metrics& m);

} // namespace asio_blocking

#endif
