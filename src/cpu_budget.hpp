// The CPUs this process may use: its affinity mask and its cgroup's CPU quota.
#ifndef ASIO_BLOCKING_SRC_CPU_BUDGET_HPP
#define ASIO_BLOCKING_SRC_CPU_BUDGET_HPP

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio_blocking::detail {

/// How a quota of part of a CPU counts in whole CPUs.
enum class quota_rounding {
    /// 1.5 CPUs count as 2: threads that each run part of the time fit (sizing the pool).
    up,
    /// 1.5 CPUs count as 1: the CPUs a thread may take whole (a polling worker) without
    /// throttling the others.
    down,
};

/// CPUs granted by a cgroup v2 `cpu.max` ("150000 100000" → 2: quota over period, rounded
/// up unless told otherwise); nullopt for "max" (no quota) or text that does not parse.
std::optional<std::size_t> parse_cpu_max(std::string_view cpu_max, quota_rounding rounding = quota_rounding::up);

/// The same for cgroup v1's `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota -1: none).
std::optional<std::size_t> parse_cfs_quota(std::string_view quota_us, std::string_view period_us,
                                           quota_rounding rounding = quota_rounding::up);

/// The tightest quota set in `v2_dirs` (cpu.max) or `v1_dirs` (cpu.cfs_*); nullopt if none is.
std::optional<std::size_t> cgroup_cpu_quota(const std::vector<std::string>& v2_dirs,
                                            const std::vector<std::string>& v1_dirs,
                                            quota_rounding rounding = quota_rounding::up);

/// CPUs in this thread's affinity mask (sched_getaffinity); nullopt if it cannot be read.
std::optional<std::size_t> affinity_cpu_count();

/// The CPUs this process may use: min(affinity mask, cgroup quota), at least 1; falls back to
/// std::thread::hardware_concurrency() where neither is known. Reads /proc and /sys each call.
std::size_t cpu_budget(quota_rounding rounding = quota_rounding::up);

} // namespace asio_blocking::detail

#endif
