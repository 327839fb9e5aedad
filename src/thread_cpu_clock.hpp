// The CPU time a given thread has used, readable from another thread (the pool's monitor).
#ifndef ASIO_BLOCKING_SRC_THREAD_CPU_CLOCK_HPP
#define ASIO_BLOCKING_SRC_THREAD_CPU_CLOCK_HPP

#include <chrono>
#include <optional>
#include <pthread.h>
#include <time.h>

namespace asio_blocking::detail {

/// A thread's CPU-time clock (pthread_getcpuclockid). Valid while the thread has not been
/// joined or detached-and-exited: the monitor reads it only for workers it knows are running.
class thread_cpu_clock {
public:
    /// The clock of `thread`; nullopt if the system has none for it.
    static std::optional<thread_cpu_clock> of(pthread_t thread) noexcept;

    /// CPU time the thread has used so far; nullopt if it can no longer be read.
    std::optional<std::chrono::nanoseconds> used() const noexcept;

private:
    explicit thread_cpu_clock(clockid_t id) noexcept
        : id_(id)
    {
    }
    clockid_t id_;
};

} // namespace asio_blocking::detail

#endif
