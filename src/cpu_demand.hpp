// How much CPU a running worker wants: its time on a CPU plus its time waiting for one.
#ifndef ASIO_BLOCKING_SRC_CPU_DEMAND_HPP
#define ASIO_BLOCKING_SRC_CPU_DEMAND_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <sys/types.h>

#include "thread_cpu_clock.hpp"

namespace asio_blocking::detail {

/// A thread's scheduler accounting at one instant.
/**
 * Time on a CPU alone cannot tell a blocked call from a computing one on a busy machine: a
 * computing thread that waits for a core also gets little CPU time. Time spent runnable but
 * waiting (the scheduler's run delay) tells them apart; where the kernel does not report it,
 * `waiting` stays 0 and only CPU time counts.
 */
struct thread_times {
    std::chrono::nanoseconds on_cpu{0};
    std::chrono::nanoseconds waiting{0};
};

/// Parses /proc/<pid>/task/<tid>/schedstat ("on-cpu-ns run-delay-ns timeslices").
std::optional<thread_times> parse_schedstat(std::string_view schedstat);

/// Reads thread `tid` of this process: schedstat if the kernel has it, else `cpu_clock` (the
/// same thread's CPU-time clock) with no waiting time; nullopt if neither can be read. Safe on
/// a thread that has exited (both name it by number), though the answer is then meaningless.
std::optional<thread_times> read_thread_times(pid_t tid, const thread_cpu_clock& cpu_clock);

/// CPUs a thread wanted between two readings `wall` apart: (on CPU + waiting) / wall, in [0, 1].
double cpu_demand(const thread_times& before, const thread_times& after, std::chrono::nanoseconds wall);

/// A call whose thread wanted at least this share of a CPU counts as CPU-bound; less, as
/// blocked (sleeping, waiting for I/O or a lock).
inline constexpr double cpu_bound_share = 0.5;

/// What one sample of the running calls found.
struct running_cpu {
    double cpus_wanted = 0;    ///< Sum of the sampled calls' cpu_demand.
    std::size_t cpu_bound = 0; ///< Sampled calls at or above cpu_bound_share.
    std::size_t blocked = 0;   ///< Sampled calls below it.

    void add(double demand) noexcept
    {
        cpus_wanted += demand;
        ++(demand >= cpu_bound_share ? cpu_bound : blocked);
    }
};

} // namespace asio_blocking::detail

#endif
