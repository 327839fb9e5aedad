// Configuration of a blocking_pool: thread limits, idle retirement, queue bounds, thread hooks.
#ifndef ASIO_BLOCKING_POOL_OPTIONS_HPP
#define ASIO_BLOCKING_POOL_OPTIONS_HPP

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace asio_blocking {

/// What a submission does when the pool's queue is at `queue_capacity`.
enum class overflow_policy {
    /// Wait for room. `async_blocking` waits asynchronously (the caller's thread is never
    /// blocked); a plain `post`/`execute` blocks the calling thread, except on a pool thread.
    wait,
    /// Complete at once with `error::queue_full`; a plain `post`/`execute` throws
    /// `boost::system::system_error` carrying it.
    reject,
};

/// The OS scheduling class of a pool's worker threads, relative to the application's threads.
/**
 * Applied by each worker to itself as it starts; needs no privileges (each class only lowers a
 * thread's claim on the CPU). If the OS refuses (a sandbox filtering the calls), the worker runs
 * in the class it was created with and nothing fails. Threads started from inside a call inherit
 * the worker's class, and cannot return from `low` or `idle` without privileges.
 */
enum class os_scheduling {
    /// As created: workers compete for the CPU as equals with the event loop.
    normal,
    /// `SCHED_BATCH` at a nice value 10 above the pool creator's: workers yield the CPU to the
    /// application's threads on wake-up and get a smaller share of a contended core, but still
    /// progress while other work keeps every core busy.
    low,
    /// `SCHED_IDLE`: workers run only on otherwise idle CPUs, so they never delay the event loop;
    /// but while other threads of the same process or cgroup keep every core busy, workers (and
    /// every blocking call they run) make almost no progress.
    idle,
};

/// Options of a `blocking_pool`. An aggregate: use designated initializers.
/**
 * @code
 * asio_blocking::blocking_pool pool({.min_threads = 2, .max_threads = 64});
 * @endcode
 *
 * Sizing: the defaults suit CPU-bound, blocking and mixed calls alike. The pool starts threads
 * for calls that block, up to `max_threads`, and stops adding them once its running calls
 * want `cpu_limit` CPUs; lanes bound calls by a real resource (connections, files).
 */
struct pool_options {
    /// Threads kept alive even when idle; started by the constructor. More than the process may
    /// run (RLIMIT_NPROC, kernel.threads-max) is refused.
    std::size_t min_threads = 0;
    /// Never more threads than this alive at once (the OS's limits may lower it: see
    /// `pool_metrics::effective_max_threads`). Must be at least 1.
    std::size_t max_threads = 512;
    /// A worker idle this long retires while more than `min_threads` exist: 0 at once, `max()`
    /// never. Kept workers sleep untimed, so an idle pool uses no CPU.
    std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(10);
    /// Worker threads are named `thread_name` followed by their index (at most 15
    /// characters in all on Linux; the name part is truncated to fit).
    std::string thread_name = "blocking";
    /// Most calls waiting to start; 0 means unbounded.
    std::size_t queue_capacity = 0;
    /// What happens to a submission that finds the queue full.
    overflow_policy on_overflow = overflow_policy::wait;
    /// Stack size of worker threads in bytes; 0 means the platform default.
    std::size_t stack_size = 0;
    /// Run on each worker thread when it starts. An exception is reported, not fatal.
    std::function<void()> on_thread_start;
    /// Run on each worker thread just before it exits. An exception is reported, not fatal.
    std::function<void()> on_thread_stop;
    /// CPUs the pool's running calls may use at once: once they want this many, a backlog no
    /// longer starts threads. 0 means the CPUs this process may use (its affinity mask and its
    /// cgroup's `cpu.max` quota, rounded up, read when the pool is created).
    std::size_t cpu_limit = 0;
    /// The OS scheduling class of the workers, applied before `on_thread_start` runs.
    os_scheduling worker_scheduling = os_scheduling::low;
};

/// Throws `std::invalid_argument` naming the offending field if `options` is unusable.
void validate(const pool_options& options);

} // namespace asio_blocking

#endif
