// Puts a worker thread in the OS scheduling class that pool_options::worker_scheduling names.
#ifndef ASIO_BLOCKING_SRC_THREAD_SCHEDULING_HPP
#define ASIO_BLOCKING_SRC_THREAD_SCHEDULING_HPP

#include <asio_blocking/pool_options.hpp>

namespace asio_blocking::detail {

/// How much `os_scheduling::low` raises a worker's nice value above the pool creator's.
inline constexpr int low_scheduling_nice_increment = 10;

/// The time slice a `low` worker asks the kernel for, where it can (EEVDF, Linux 6.12 and later;
/// earlier kernels ignore it). The default slice (0.75 ms per log2 of the CPUs, up to 3 ms) is
/// how long a running worker may keep a CPU that an event loop just woken is waiting for.
inline constexpr unsigned low_scheduling_slice_us = 100;

/// The calling thread's time slice in microseconds as the kernel reports it (sched_getattr:
/// Linux 6.12 and later); 0 where it does not.
unsigned this_thread_slice_us() noexcept;

/// The calling thread's nice value (Linux keeps one per thread).
int this_thread_nice() noexcept;

/// Moves the calling thread to `scheduling`: `low` is SCHED_BATCH at `base_nice` +
/// low_scheduling_nice_increment (at most 19), `idle` is SCHED_IDLE, `normal` changes nothing.
/// Needs no privileges, since each only lowers the thread's claim on the CPU; returns false if
/// the OS refused (a sandbox filtering the calls), leaving the thread in the class it had.
bool apply_to_this_thread(os_scheduling scheduling, int base_nice) noexcept;

/// Best effort to put the calling thread back in the normal class at `base_nice`: for a pool
/// thread that is not a worker (the monitor) but may have been started by one, and inherited
/// its class, and for a worker whose calls have turned tiny. Leaving SCHED_BATCH is always
/// allowed; lowering the nice value or leaving `idle` needs CAP_SYS_NICE or RLIMIT_NICE, else
/// the thread keeps them. Returns whether the thread is back at normal.
bool restore_this_thread(int base_nice) noexcept;

/// Whether the calling thread runs in a class a lowered worker has (a thread started by one
/// inherits it): SCHED_BATCH, SCHED_IDLE, or `low`'s nice value above `base_nice`. A thread
/// merely a little below `base_nice` (an event loop at nice 5 in a pool made at 0) is not.
bool this_thread_runs_lowered(int base_nice) noexcept;

} // namespace asio_blocking::detail

#endif
