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

/// Options of a `blocking_pool`. An aggregate: use designated initializers.
/**
 * @code
 * asio_blocking::blocking_pool pool({.min_threads = 2, .max_threads = 64});
 * @endcode
 *
 * Sizing: for CPU-bound work (hashing, compression) `max_threads` near the core count;
 * for I/O-bound work (database calls, file I/O) several times the core count or more, since
 * threads mostly sleep. The default (512) suits I/O-bound work, like tokio's blocking pool.
 */
struct pool_options {
    /// Threads kept alive even when idle; started by the constructor. More than the process may
    /// run (RLIMIT_NPROC, kernel.threads-max) is refused.
    std::size_t min_threads = 0;
    /// Never more threads than this alive at once. Must be at least 1.
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
};

/// Throws `std::invalid_argument` naming the offending field if `options` is unusable.
void validate(const pool_options& options);

} // namespace asio_blocking

#endif
