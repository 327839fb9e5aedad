// The CPUs this process may use: its affinity mask and its cgroup's CPU quota.
#include "cpu_budget.hpp"

#include "cgroup.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <sched.h>
#include <thread>

namespace asio_blocking::detail {

namespace {

std::string_view trim(std::string_view s)
{
    const auto first = s.find_first_not_of(" \t\n");
    if (first == std::string_view::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\n");
    return s.substr(first, last - first + 1);
}

/// A whole decimal number (optionally negative), nothing else.
template <typename Int>
std::optional<Int> parse_int(std::string_view s)
{
    s = trim(s);
    Int value{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        return std::nullopt;
    return value;
}

std::optional<std::size_t> cpus_for(long long quota, long long period, quota_rounding rounding)
{
    if (quota <= 0 || period <= 0)
        return std::nullopt;
    // A quota of 1.5 periods lets 2 threads run part-time: round up, as Go and Java do; but a
    // thread that never sleeps has only 1 to itself.
    if (rounding == quota_rounding::down)
        return static_cast<std::size_t>(quota / period);
    return static_cast<std::size_t>((quota + period - 1) / period);
}

void take_min(std::optional<std::size_t>& result, std::optional<std::size_t> candidate)
{
    if (candidate && (!result || *candidate < *result))
        result = candidate;
}

} // namespace

std::optional<std::size_t> parse_cpu_max(std::string_view cpu_max, quota_rounding rounding)
{
    cpu_max = trim(cpu_max);
    const auto space = cpu_max.find(' ');
    const auto quota_text = cpu_max.substr(0, space);
    if (quota_text == "max")
        return std::nullopt;
    const auto quota = parse_int<long long>(quota_text);
    // The period is optional when writing cpu.max, but the kernel always shows it.
    const auto period = space == std::string_view::npos ? std::optional<long long>(100000)
                                                        : parse_int<long long>(cpu_max.substr(space + 1));
    if (!quota || !period)
        return std::nullopt;
    return cpus_for(*quota, *period, rounding);
}

std::optional<std::size_t> parse_cfs_quota(std::string_view quota_us, std::string_view period_us,
                                           quota_rounding rounding)
{
    const auto quota = parse_int<long long>(quota_us);
    const auto period = parse_int<long long>(period_us);
    if (!quota || !period)
        return std::nullopt;
    return cpus_for(*quota, *period, rounding);
}

std::optional<std::size_t> cgroup_cpu_quota(const std::vector<std::string>& v2_dirs,
                                            const std::vector<std::string>& v1_dirs, quota_rounding rounding)
{
    std::optional<std::size_t> result;
    for (const auto& dir : v2_dirs)
        if (const auto text = read_small_file(dir + "/cpu.max"))
            take_min(result, parse_cpu_max(*text, rounding));
    for (const auto& dir : v1_dirs) {
        const auto quota = read_small_file(dir + "/cpu.cfs_quota_us");
        const auto period = read_small_file(dir + "/cpu.cfs_period_us");
        if (quota && period)
            take_min(result, parse_cfs_quota(*quota, *period, rounding));
    }
    return result;
}

std::optional<std::size_t> affinity_cpu_count()
{
    // Sized for machines with more CPUs than a default cpu_set_t holds.
    for (std::size_t cpus = 1024; cpus <= 1024 * 1024; cpus *= 4) {
        const std::size_t bytes = CPU_ALLOC_SIZE(cpus);
        cpu_set_t* set = CPU_ALLOC(cpus);
        if (!set)
            return std::nullopt;
        const int rc = sched_getaffinity(0, bytes, set);
        const std::size_t count = rc == 0 ? static_cast<std::size_t>(CPU_COUNT_S(bytes, set)) : 0;
        CPU_FREE(set);
        if (rc == 0)
            return count > 0 ? std::optional<std::size_t>(count) : std::nullopt;
        if (errno != EINVAL)
            return std::nullopt;
    }
    return std::nullopt;
}

std::size_t cpu_budget(quota_rounding rounding)
{
    std::optional<std::size_t> result = affinity_cpu_count();
    take_min(result, cgroup_cpu_quota(own_cgroup_dirs(cgroup_v2), own_cgroup_dirs(cgroup_hierarchy{"cpu"}), rounding));
    if (!result)
        result = std::thread::hardware_concurrency();
    return std::max<std::size_t>(*result, 1);
}

} // namespace asio_blocking::detail
