// How much CPU a running worker wants: its CPU time, or all of a CPU while it is runnable.
#ifndef ASIO_BLOCKING_SRC_CPU_DEMAND_HPP
#define ASIO_BLOCKING_SRC_CPU_DEMAND_HPP

#include <chrono>
#include <cstddef>

#include "thread_cpu_clock.hpp"

namespace asio_blocking::detail {

/// Whether the thread is runnable (on a CPU, or waiting for one) when it is read.
enum class thread_state_now : unsigned char { runnable, not_runnable };

/// CPUs a thread wanted between two readings of its CPU clock `wall` apart, in [0, 1].
/**
 * A thread runnable now wants a whole CPU: it is computing, or waiting for a core, and on a
 * loaded machine a computing thread may have had none in the interval, so its CPU time alone
 * would make it look blocked (and the pool would add threads that only take turns). Otherwise
 * (asleep: I/O, a lock, a sleep) its CPU time over the interval says how much it computed.
 * The kernel's own accounting of time spent waiting (schedstat's run delay) is no help here:
 * it is counted only once the wait ends, and time on a CPU only at the scheduler's tick.
 */
double cpu_demand(std::chrono::nanoseconds cpu_before, std::chrono::nanoseconds cpu_after,
                  std::chrono::nanoseconds wall, thread_state_now state) noexcept;

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
