// The CPU time a given thread has used, readable from another thread (the pool's monitor).
#include "thread_cpu_clock.hpp"

namespace asio_blocking::detail {

std::optional<thread_cpu_clock> thread_cpu_clock::of(pthread_t thread) noexcept
{
    clockid_t id;
    if (pthread_getcpuclockid(thread, &id) != 0)
        return std::nullopt;
    return thread_cpu_clock(id);
}

std::optional<std::chrono::nanoseconds> thread_cpu_clock::used() const noexcept
{
    timespec ts{};
    if (clock_gettime(id_, &ts) != 0)
        return std::nullopt;
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

} // namespace asio_blocking::detail
