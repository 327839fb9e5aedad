// How many more threads the OS lets this process start: RLIMIT_NPROC and the cgroup's pids limit.
#ifndef ASIO_BLOCKING_SRC_THREAD_LIMIT_HPP
#define ASIO_BLOCKING_SRC_THREAD_LIMIT_HPP

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

} // namespace asio_blocking::detail

#endif
