// How many more threads the OS lets this process start: RLIMIT_NPROC and the cgroup's pids limit.
#ifndef ASIO_BLOCKING_SRC_THREAD_LIMIT_HPP
#define ASIO_BLOCKING_SRC_THREAD_LIMIT_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio_blocking::detail {

/// Tasks a cgroup's pids controller still admits: `pids.max` ("max" or a count) minus
/// `pids.current`, never below 0; nullopt for "max" or text that does not parse.
std::optional<std::size_t> parse_pids_headroom(std::string_view pids_max, std::string_view pids_current);

/// The `Threads:` count of a /proc/<pid>/status text; nullopt if absent.
std::optional<std::size_t> parse_status_threads(std::string_view proc_status);

/// Threads RLIMIT_NPROC still allows, given its soft limit and this process's own thread count.
/**
 * RLIMIT_NPROC counts every task of the user, in every process; counting them means reading all
 * of /proc, so only this process's own threads are subtracted: the result is an upper bound,
 * and a thread start that fails anyway lowers the pool's limit from there. Unlimited: nullopt.
 */
std::optional<std::size_t> nproc_headroom(std::optional<std::size_t> soft_limit, std::size_t own_threads);

/// The tightest headroom of the pids limits in `dirs` (innermost cgroup first); nullopt if none.
std::optional<std::size_t> cgroup_pids_headroom(const std::vector<std::string>& dirs);

/// How many more threads this process may start, read now from getrlimit (unless running as
/// root, to which the kernel does not apply RLIMIT_NPROC), /proc and the cgroup's pids limits
/// (v2 and v1); nullopt if no limit applies. Reads /proc and /sys each call.
std::optional<std::size_t> os_thread_headroom();

/// The most threads a pool may have: `max_threads`, capped by what the OS allowed when the pool
/// was created, and lowered to the threads there were after a failed thread start until
/// `recovery` passes without another (the OS limit may have been other processes' threads,
/// which come and go). Guarded by the pool's lock; takes the time from its caller.
class thread_cap {
public:
    using steady_time = std::chrono::steady_clock::time_point;
    static constexpr std::chrono::seconds recovery{1};

    /// `os_headroom`: os_thread_headroom() when the pool had no threads yet.
    explicit thread_cap(std::optional<std::size_t> os_headroom) noexcept
        : os_cap_(os_headroom ? *os_headroom : static_cast<std::size_t>(-1))
    {
    }

    /// The cap in force at `now` for a pool allowed `max_threads`; at least 1.
    std::size_t limit(std::size_t max_threads, steady_time now) const noexcept
    {
        std::size_t cap = max_threads < os_cap_ ? max_threads : os_cap_;
        if (lowered_ && now - lowered_at_ < recovery && lowered_to_ < cap)
            cap = lowered_to_;
        return cap > 0 ? cap : 1;
    }

    /// How long until a lowered cap lifts; max() if it is not lowered.
    std::chrono::steady_clock::duration lifts_after(steady_time now) const noexcept
    {
        if (!lowered_ || now - lowered_at_ >= recovery)
            return std::chrono::steady_clock::duration::max();
        return lowered_at_ + recovery - now;
    }

    /// A thread start failed while `alive` threads were running or starting.
    void start_failed(std::size_t alive, steady_time now) noexcept
    {
        lowered_ = true;
        lowered_to_ = alive > 0 ? alive : 1;
        lowered_at_ = now;
    }

private:
    std::size_t os_cap_;
    bool lowered_ = false;
    std::size_t lowered_to_ = 0;
    steady_time lowered_at_{};
};

} // namespace asio_blocking::detail

#endif
