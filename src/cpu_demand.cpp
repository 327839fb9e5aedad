// How much CPU a running worker wants: all of a CPU while runnable, else its CPU time plus its
// time waiting for a CPU.
#include "cpu_demand.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

namespace asio_blocking::detail {

std::optional<std::chrono::nanoseconds> parse_schedstat_run_delay(std::string_view schedstat)
{
    const auto space = schedstat.find(' ');
    if (space == std::string_view::npos)
        return std::nullopt;
    schedstat.remove_prefix(space + 1);
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(schedstat.data(), schedstat.data() + schedstat.size(), value);
    if (ec != std::errc() || end == schedstat.data())
        return std::nullopt;
    return std::chrono::nanoseconds(value);
}

std::chrono::nanoseconds read_run_delay(pid_t tid) noexcept
{
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", static_cast<int>(tid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::chrono::nanoseconds(0);
    char buffer[128];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (n <= 0)
        return std::chrono::nanoseconds(0);
    return parse_schedstat_run_delay(std::string_view(buffer, static_cast<std::size_t>(n)))
        .value_or(std::chrono::nanoseconds(0));
}

double cpu_demand(const thread_times& before, const thread_times& after, std::chrono::nanoseconds wall,
                  thread_state_now state) noexcept
{
    if (state == thread_state_now::runnable)
        return 1.0;
    if (wall.count() <= 0)
        return 0;
    const auto wanted = (after.on_cpu - before.on_cpu) + (after.waited - before.waited);
    return std::clamp(static_cast<double>(wanted.count()) / static_cast<double>(wall.count()), 0.0, 1.0);
}

} // namespace asio_blocking::detail
