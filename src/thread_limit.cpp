// How many more threads the OS lets this process start: RLIMIT_NPROC and the cgroup's pids limit.
#include "thread_limit.hpp"

#include "cgroup.hpp"

#include <charconv>
#include <sys/resource.h>
#include <unistd.h>

namespace asio_blocking::detail {

namespace {

std::optional<std::size_t> parse_count(std::string_view s)
{
    const auto first = s.find_first_not_of(" \t\n");
    const auto last = s.find_last_not_of(" \t\n");
    if (first == std::string_view::npos)
        return std::nullopt;
    s = s.substr(first, last - first + 1);
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size())
        return std::nullopt;
    return value;
}

void take_min(std::optional<std::size_t>& result, std::optional<std::size_t> candidate)
{
    if (candidate && (!result || *candidate < *result))
        result = candidate;
}

} // namespace

std::optional<std::size_t> parse_pids_headroom(std::string_view pids_max, std::string_view pids_current)
{
    const auto max = parse_count(pids_max);
    const auto current = parse_count(pids_current);
    if (!max || !current)
        return std::nullopt;
    return *max > *current ? *max - *current : 0;
}

std::optional<std::size_t> parse_status_threads(std::string_view proc_status)
{
    constexpr std::string_view key = "\nThreads:";
    const auto at = proc_status.find(key);
    if (at == std::string_view::npos)
        return std::nullopt;
    auto rest = proc_status.substr(at + key.size());
    return parse_count(rest.substr(0, rest.find('\n')));
}

std::optional<std::size_t> nproc_headroom(std::optional<std::size_t> soft_limit, std::size_t own_threads)
{
    if (!soft_limit)
        return std::nullopt;
    return *soft_limit > own_threads ? *soft_limit - own_threads : 0;
}

std::optional<std::size_t> cgroup_pids_headroom(const std::vector<std::string>& dirs)
{
    std::optional<std::size_t> result;
    for (const auto& dir : dirs) {
        const auto max = read_small_file(dir + "/pids.max");
        const auto current = read_small_file(dir + "/pids.current");
        if (max && current)
            take_min(result, parse_pids_headroom(*max, *current));
    }
    return result;
}

std::optional<std::size_t> os_thread_headroom()
{
    std::optional<std::size_t> result;
    rlimit limit{};
    // The kernel does not apply RLIMIT_NPROC to real user id 0.
    if (getuid() != 0 && getrlimit(RLIMIT_NPROC, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        const auto status = read_small_file("/proc/self/status");
        const auto own = status ? parse_status_threads(*status) : std::nullopt;
        take_min(result, nproc_headroom(static_cast<std::size_t>(limit.rlim_cur), own.value_or(1)));
    }
    // Hybrid systems mount v2 without controllers beside v1's pids hierarchy: look in both.
    take_min(result, cgroup_pids_headroom(own_cgroup_dirs(cgroup_v2)));
    take_min(result, cgroup_pids_headroom(own_cgroup_dirs(cgroup_hierarchy{"pids"})));
    return result;
}

} // namespace asio_blocking::detail
