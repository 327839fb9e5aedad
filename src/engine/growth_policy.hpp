// How many threads a pool should start now: a pure function of a snapshot of its state.
#ifndef ASIO_BLOCKING_SRC_ENGINE_GROWTH_POLICY_HPP
#define ASIO_BLOCKING_SRC_ENGINE_GROWTH_POLICY_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace asio_blocking::detail {

/// Who asks: a worker that has just taken its first call may start two threads (growth as a
/// tree, so a cold burst of blocking calls reaches max_threads in a few thread-start times);
/// everyone else starts at most one.
enum class growth_asker : unsigned char { submitter, worker, monitor };

/// What the OS says the thread running the oldest call is doing. Only the monitor asks (it
/// costs a read of /proc); the others report `unknown`, or `sleeping` once the monitor has
/// seen a cold burst's calls sleep.
enum class thread_activity : unsigned char {
    unknown,
    runnable, ///< On a CPU or waiting for one: computing, or preempted. More threads won't help.
    sleeping, ///< Blocked (sleep, I/O, a lock): another thread could run the backlog.
};

/// What the policy sees. The coordinator fills it under the pool's lock (see
/// coordinator::growth_snapshot_locked); the monitor adds CPU-time figures while there is a
/// backlog.
struct growth_snapshot {
    using duration = std::chrono::steady_clock::duration;

    // Queue and threads.
    std::size_t queued = 0;   ///< Calls waiting for a worker.
    std::size_t threads = 0;  ///< Workers alive.
    std::size_t starting = 0; ///< Thread starts under way.
    std::size_t busy = 0;     ///< Workers running a call (or between two calls).
    std::size_t min_threads = 0;
    std::size_t max_threads = 1;

    // Recent run times: a decayed share of finished calls that ran at least
    // `growth_policy::slow_call`, so one preempted tiny call does not look blocking.
    std::uint64_t finished_calls = 0; ///< Calls that ran since the pool started (0: nothing known).
    unsigned slow_share = 0;          ///< 0..256: recent calls that were slow, out of 256.

    // Stall age: how long the longest-running call has been running (zero if none runs), and
    // whether its thread is blocked or merely busy (a preempted tiny call is not a stall).
    duration oldest_running{0};
    thread_activity oldest_activity = thread_activity::unknown;

    // Thread start failures.
    std::uint64_t start_failures = 0;               ///< Since the pool started.
    duration since_start_failure = duration::max(); ///< Since the last one (max: none).

    // CPU use of the running calls, sampled by the monitor while calls wait (see cpu_demand.hpp):
    // time on a CPU plus time waiting for one, so a computing call on a loaded machine does
    // not pass for a blocked one.
    double running_cpus = -1;          ///< CPUs the running calls wanted lately; < 0: no recent sample.
    double cpu_limit = 0;              ///< CPUs the pool may use; 0: no limit known.
    std::size_t cpu_bound_running = 0; ///< Running calls judged CPU-bound (of `busy`).

    // The OS thread cap: `max_threads` above is already lowered by it; after a failed start it
    // is lowered further, and lifts after this (max: not lowered).
    duration cap_lifts_after = duration::max();

    growth_asker asker = growth_asker::submitter;
};

struct growth_decision {
    /// Threads to start now.
    std::size_t start = 0;
    /// If nothing starts now: when the same backlog is worth looking at again (max: never).
    std::chrono::steady_clock::duration recheck_after = std::chrono::steady_clock::duration::max();
};

namespace growth_policy {
using namespace std::chrono_literals;
/// Calls running at least this long count as slow (blocking): a backlog of them grows the pool.
inline constexpr std::chrono::steady_clock::duration slow_call = 50us;
/// Slow if at least this share (of 256) of recent calls were: a majority, not one outlier.
inline constexpr unsigned slow_majority = 128;
/// Tiny calls grow the pool only once one has run this long: longer than a scheduler time
/// slice, so a worker that was merely preempted does not look stalled.
inline constexpr std::chrono::steady_clock::duration stall = 10ms;
/// After a failed thread start, growth pauses this long rather than retrying in a loop.
inline constexpr std::chrono::steady_clock::duration start_failure_backoff = 50ms;
/// How often the monitor looks again at a long call whose thread is runnable, not asleep.
inline constexpr std::chrono::steady_clock::duration activity_poll = 2ms;
/// How often the monitor samples the running calls' CPU use while calls wait, and how long a
/// sample stands for them: a call that starts blocking is noticed within about this.
inline constexpr std::chrono::steady_clock::duration cpu_sample_period = 2ms;
/// The running calls fill the CPUs once they want `cpu_limit` less this: another computing
/// thread would find at most half a CPU.
inline constexpr double cpu_full_margin = 0.5;
/// Most thread starts under way at once (blocking calls only).
inline constexpr std::size_t concurrent_starts = 4;

/// Folds one finished call's run time into `slow_share` (a moving share over ~8 calls).
unsigned next_slow_share(unsigned slow_share, std::uint64_t finished_before,
                         std::chrono::steady_clock::duration run_time) noexcept;
} // namespace growth_policy

/// The decision for `s`. Pure: no clock, no state.
growth_decision decide_growth(const growth_snapshot& s) noexcept;

} // namespace asio_blocking::detail

#endif
