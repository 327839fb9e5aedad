// The pool's monitor thread: wakes for queue deadlines and growth re-checks, and sleeps otherwise.
#ifndef ASIO_BLOCKING_SRC_ENGINE_MONITOR_HPP
#define ASIO_BLOCKING_SRC_ENGINE_MONITOR_HPP

#include "../thread_scheduling.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace asio_blocking::detail {

/// Started on first need. Runs `tick` under the engine's mutex whenever a wake-up it was asked
/// for is due; `tick` returns when it wants to run next (max(): only when asked). It never
/// blocks on a delivery: `tick` aborts expired calls outside the lock, where a post to a full pool
/// is admitted over capacity (coordinator's never_block_scope).
class monitor {
public:
    using steady_time = std::chrono::steady_clock::time_point;
    using tick_fn = std::function<steady_time(std::unique_lock<std::mutex>&, steady_time now)>;

    /// Under the engine's mutex: make sure `tick` runs by `at` (starting the thread if need be).
    /// False if the thread could not start (deadlines are then enforced when calls start).
    /// `on_exit` runs on the thread as its last act, outside the lock.
    bool wake_by_locked(steady_time at, std::mutex& mutex, const tick_fn& tick, std::function<void()> on_exit);

    /// Under the engine's mutex: `tick` already runs by `at`.
    bool due_by(steady_time at) const noexcept { return thread_.joinable() && wake_at_ <= at; }

    /// Under the engine's mutex: the thread exists.
    bool running() const noexcept { return thread_.joinable(); }

    /// Under the engine's mutex: the thread ends at its next look; returns it, to be joined
    /// (or detached, on itself) outside the lock.
    std::thread stop_locked();

private:
    void run(std::mutex& mutex, tick_fn tick);

    std::thread thread_;
    // Read on the pool's creating thread: the monitor runs at its nice value, in the normal
    // class, though the thread that starts it is often a worker in a lower one.
    int creator_nice_ = this_thread_nice();
    std::condition_variable cv_;
    steady_time wake_at_ = steady_time::max();
    bool stopped_ = false;
};

} // namespace asio_blocking::detail

#endif
