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
    /// Idle moments in which a worker polled for its caller's next call (at most 50 µs) before sleeping.
    std::uint64_t idle_spins = 0;
    std::uint64_t idle_spin_hits = 0; ///< Of `idle_spins`: those in which a call arrived.
    std::size_t peak_threads = 0;
    std::size_t peak_queued = 0;
};

/// A consistent snapshot of a pool, taken under the pool's lock.
/**
 * Every submitted call ends in exactly one of `completed`, `failed`, `cancelled`, `rejected`
 * and `expired`, so once the pool is quiescent (`queued == busy_threads == 0`):
 * `completed + failed + cancelled + rejected + expired == submitted`.
 * Plain `post`/`execute` work counts too (a function that throws counts as `failed`).
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
    /// Start to return, of calls that ran: every call while calls are slow; one in 16 while
    /// they take microseconds (reading the clock around each would cost a tiny call 10 %).
    latency_summary run_time;
};

/// What a field measures: a level now, a count since the pool started, or a latency distribution.
enum class metric_kind { gauge, counter, distribution };

/// A field of `pool_metrics` or `lane_metrics` as `for_each_field` presents it.
struct metric_field {
    const char* name; ///< The member's name.
    metric_kind kind;
    const char* help; ///< One sentence saying what it counts.
};

/// Calls `visit(field, value)` for each field of `m` in declaration order: scalars as
/// `std::uint64_t`, `queued_by_priority` as the array, `queue_wait` and `run_time` as
/// `latency_summary`. `operator<<`, `to_json` and the Prometheus collector are built on it, so a
/// new field needs one line here to appear in all of them.
template <typename Visitor>
void for_each_field(const pool_metrics& m, Visitor&& visit)
{
    using k = metric_kind;
    using u = std::uint64_t;
    visit(metric_field{"threads", k::gauge, "Worker threads alive."}, u{m.threads});
    visit(metric_field{"idle_threads", k::gauge, "Worker threads waiting for work."}, u{m.idle_threads});
    visit(metric_field{"busy_threads", k::gauge, "Worker threads running a call, including abandoned ones."},
          u{m.busy_threads});
    visit(metric_field{"queued", k::gauge, "Calls admitted and waiting for a worker."}, u{m.queued});
    visit(metric_field{"queued_by_priority", k::gauge, "Calls waiting for a worker, by priority."},
          m.queued_by_priority);
    visit(metric_field{"waiting_admission", k::gauge, "Calls waiting for room in a full queue."},
          u{m.waiting_admission});
    visit(metric_field{"waiting_in_lanes", k::gauge, "Calls held back by their lane's limit."}, u{m.waiting_in_lanes});
    visit(metric_field{"outstanding_work", k::gauge, "Tracked executors and pending calls (join waits for 0)."},
          u{m.outstanding_work});
    visit(metric_field{"effective_max_threads", k::gauge, "max_threads, lowered to what the OS lets the pool start."},
          u{m.effective_max_threads});
    visit(metric_field{"cpu_bound_running", k::gauge, "Running calls judged CPU-bound (sampled while calls wait)."},
          u{m.cpu_bound_running});
    visit(metric_field{"submitted", k::counter, "Calls submitted, including refused ones."}, m.submitted);
    visit(metric_field{"completed", k::counter, "Calls that ran and returned."}, m.completed);
    visit(metric_field{"failed", k::counter, "Calls that ran and threw."}, m.failed);
    visit(metric_field{"cancelled", k::counter, "Calls cancelled, aborted by stop(), or abandoned while running."},
          m.cancelled);
    visit(metric_field{"abandoned", k::counter, "Cancelled calls completed early while still running."}, m.abandoned);
    visit(metric_field{"rejected", k::counter, "Calls refused at submission (queue full or pool stopped)."},
          m.rejected);
    visit(metric_field{"expired", k::counter, "Calls whose queue deadline passed before they started."}, m.expired);
    visit(metric_field{"threads_started", k::counter, "Worker threads started."}, m.threads_started);
    visit(metric_field{"threads_retired", k::counter, "Worker threads that exited."}, m.threads_retired);
    visit(metric_field{"thread_start_failures", k::counter, "Worker thread starts that failed."},
          m.thread_start_failures);
    visit(metric_field{"hook_failures", k::counter, "on_thread_start/on_thread_stop calls that threw."},
          m.hook_failures);
    visit(metric_field{"idle_spins", k::counter,
                       "Idle moments in which a worker polled for its caller's next call before sleeping."},
          m.idle_spins);
    visit(metric_field{"idle_spin_hits", k::counter, "Of idle_spins: those in which a call arrived."},
          m.idle_spin_hits);
    visit(metric_field{"peak_threads", k::gauge, "Most worker threads alive at once."}, u{m.peak_threads});
    visit(metric_field{"peak_queued", k::gauge, "Most calls queued at once."}, u{m.peak_queued});
    visit(
        metric_field{"queue_wait", k::distribution, "Time from submission (or admission) to start, of one call in 16."},
        m.queue_wait);
    visit(
        metric_field{"run_time", k::distribution, "Time from start to return (sampled 1 in 16 while calls are tiny)."},
        m.run_time);
}

/// Writes a compact one-line, human-readable form of `m`.
std::ostream& operator<<(std::ostream& os, const pool_metrics& m);

/// `m` as one JSON object with stable field names; durations are in nanoseconds.
std::string to_json(const pool_metrics& m);

} // namespace asio_blocking

#endif
