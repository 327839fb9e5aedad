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

/// The counters of a pool since construction: one aggregate, copied whole into `pool_metrics`.
struct pool_counters {
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
};

/// A consistent snapshot of a pool, taken under the pool's lock.
/**
 * Every submitted call ends in exactly one of `completed`, `failed`, `cancelled`, `rejected`
 * and `expired`, so once the pool is quiescent (`queued == busy_threads == 0`):
 * `completed + failed + cancelled + rejected + expired == submitted`.
 * Plain `post`/`execute` work counts too (a function that throws counts as `failed`).
 * Use `for_each_field` to visit every field by name (printing, JSON, export).
 */
struct pool_metrics : pool_counters {
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
    std::size_t cpu_bound_running = 0;               ///< Running calls judged CPU-bound (sampled while calls wait).

    /// Submission to start, of a sample of the calls that started (one in 16, so recording
    /// costs a call nothing measurable).
    latency_summary queue_wait;
    latency_summary run_time; ///< Start to return, of calls that ran.
};

/// Calls `f(name, value)` for every field of `m`, in a stable order, with stable names.
/**
 * `value` is a `std::size_t`/`std::uint64_t`, the `std::array` of `queued_by_priority`
 * (indexed by `priority`: low, normal, high) or a `latency_summary`. The one list of fields
 * that printing, JSON and exporters share.
 */
template <typename F>
void for_each_field(const pool_metrics& m, F&& f)
{
    f("threads", m.threads);
    f("idle_threads", m.idle_threads);
    f("busy_threads", m.busy_threads);
    f("queued", m.queued);
    f("queued_by_priority", m.queued_by_priority);
    f("waiting_admission", m.waiting_admission);
    f("waiting_in_lanes", m.waiting_in_lanes);
    f("outstanding_work", m.outstanding_work);
    f("effective_max_threads", m.effective_max_threads);
    f("cpu_bound_running", m.cpu_bound_running);
    f("submitted", m.submitted);
    f("completed", m.completed);
    f("failed", m.failed);
    f("cancelled", m.cancelled);
    f("abandoned", m.abandoned);
    f("rejected", m.rejected);
    f("expired", m.expired);
    f("threads_started", m.threads_started);
    f("threads_retired", m.threads_retired);
    f("thread_start_failures", m.thread_start_failures);
    f("hook_failures", m.hook_failures);
    f("peak_threads", m.peak_threads);
    f("peak_queued", m.peak_queued);
    f("queue_wait", m.queue_wait);
    f("run_time", m.run_time);
}

/// Writes a compact one-line, human-readable form of `m`.
std::ostream& operator<<(std::ostream& os, const pool_metrics& m);

/// `m` as one JSON object with stable field names; durations are in nanoseconds.
std::string to_json(const pool_metrics& m);

} // namespace asio_blocking

#endif
