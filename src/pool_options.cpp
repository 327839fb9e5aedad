// Validation of pool_options.
#include <asio_blocking/pool_options.hpp>

#include <sys/resource.h>

#include <fstream>
#include <stdexcept>

namespace asio_blocking {

namespace {

// The most threads this process could ever run: the kernel's system-wide limit and the user's
// RLIMIT_NPROC, whichever is lower (either may be absent). min_threads beyond it cannot be met,
// and trying would only start threads until the system refuses.
std::size_t thread_limit() noexcept
{
    std::size_t limit = static_cast<std::size_t>(-1);
    rlimit rl{};
    if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < limit)
        limit = static_cast<std::size_t>(rl.rlim_cur);
    std::ifstream threads_max("/proc/sys/kernel/threads-max");
    std::size_t system_limit = 0;
    if (threads_max >> system_limit && system_limit > 0 && system_limit < limit)
        limit = system_limit;
    return limit;
}

} // namespace

void validate(const pool_options& o)
{
    if (o.max_threads == 0)
        throw std::invalid_argument("asio_blocking::pool_options: max_threads must be at least 1");
    if (o.min_threads > o.max_threads)
        throw std::invalid_argument("asio_blocking::pool_options: min_threads (" + std::to_string(o.min_threads) +
                                    ") must not exceed max_threads (" + std::to_string(o.max_threads) + ")");
    if (o.min_threads > 0) {
        // Read once: /proc is slow, and set_limits() validates on every call.
        static const std::size_t process_limit = thread_limit();
        if (const std::size_t limit = process_limit; o.min_threads > limit)
            throw std::invalid_argument("asio_blocking::pool_options: min_threads (" + std::to_string(o.min_threads) +
                                        ") exceeds the threads this process may run (" + std::to_string(limit) +
                                        ", from RLIMIT_NPROC and kernel.threads-max)");
    }
    if (o.idle_timeout < std::chrono::steady_clock::duration::zero())
        throw std::invalid_argument("asio_blocking::pool_options: idle_timeout must not be negative");
    switch (o.worker_scheduling) {
    case os_scheduling::normal:
    case os_scheduling::low:
    case os_scheduling::idle:
        break;
    default:
        throw std::invalid_argument("asio_blocking::pool_options: worker_scheduling is not an os_scheduling value");
    }
    if (o.on_overflow != overflow_policy::wait && o.on_overflow != overflow_policy::reject)
        throw std::invalid_argument("asio_blocking::pool_options: on_overflow is not an overflow_policy value");
}

} // namespace asio_blocking
