// How much CPU a running worker wants: all of a CPU while runnable, else its CPU time plus its
// time waiting for a CPU.
#ifndef ASIO_BLOCKING_SRC_CPU_DEMAND_HPP
#define ASIO_BLOCKING_SRC_CPU_DEMAND_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <sys/types.h>

#include "thread_cpu_clock.hpp"

namespace asio_blocking::detail {

/// A thread's accounting at one reading.
struct thread_times {
    std::chrono::nanoseconds on_cpu{0}; ///< From its CPU clock: exact at the time of reading.
    std::chrono::nanoseconds waited{0}; ///< Run delay (schedstat): counted once each wait ends.
};

/// Whether the thread is runnable (on a CPU, or waiting for one) at the reading.
enum class thread_state_now : unsigned char { runnable, not_runnable };

/// The run delay in a /proc/<pid>/task/<tid>/schedstat text ("on-cpu-ns run-delay-ns slices").
std::optional<std::chrono::nanoseconds> parse_schedstat_run_delay(std::string_view schedstat);

/// Thread `tid`'s run delay so far; 0 where the kernel keeps no scheduler statistics.
std::chrono::nanoseconds read_run_delay(pid_t tid) noexcept;

/// CPUs a thread wanted between two readings `wall` apart, in [0, 1].
/**
 * Runnable now: a whole CPU (computing, or waiting for a core; on a loaded machine a computing
 * thread may have had none in the interval, and its wait is not counted until it ends).
 * Otherwise (asleep on I/O, a lock, a sleep): its CPU time plus the waits for a CPU that ended
 * in the interval, so a computing thread that was mostly preempted and is briefly asleep (on
 * the pool's lock, say) does not pass for a blocked one.
 */
double cpu_demand(const thread_times& before, const thread_times& after, std::chrono::nanoseconds wall,
                  thread_state_now state) noexcept;

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
