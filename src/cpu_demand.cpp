// How much CPU a running worker wants: its time on a CPU plus its time waiting for one.
#include "cpu_demand.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fcntl.h>
#include <string>
#include <unistd.h>

namespace asio_blocking::detail {

namespace {

std::optional<std::uint64_t> next_number(std::string_view& s)
{
    const auto first = s.find_first_not_of(" \t\n");
    if (first == std::string_view::npos)
        return std::nullopt;
    s.remove_prefix(first);
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc())
        return std::nullopt;
    s.remove_prefix(static_cast<std::size_t>(end - s.data()));
    return value;
}

} // namespace

std::optional<thread_times> parse_schedstat(std::string_view schedstat)
{
    const auto on_cpu = next_number(schedstat);
    const auto waiting = next_number(schedstat);
    if (!on_cpu || !waiting)
        return std::nullopt;
    return thread_times{std::chrono::nanoseconds(*on_cpu), std::chrono::nanoseconds(*waiting)};
}

std::optional<thread_times> read_thread_times(pid_t tid, const thread_cpu_clock& cpu_clock)
{
    // open/read/close rather than a stream: the monitor reads one file per running worker.
    const std::string path = "/proc/self/task/" + std::to_string(tid) + "/schedstat";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buffer[128];
        const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
        ::close(fd);
        // Kernels without scheduler statistics show "0 0 0".
        if (n > 0)
            if (auto times = parse_schedstat(std::string_view(buffer, static_cast<std::size_t>(n)));
                times && (times->on_cpu.count() != 0 || times->waiting.count() != 0))
                return times;
    }
    const auto used = cpu_clock.used();
    if (!used)
        return std::nullopt;
    return thread_times{*used, std::chrono::nanoseconds(0)};
}

double cpu_demand(const thread_times& before, const thread_times& after, std::chrono::nanoseconds wall)
{
    if (wall.count() <= 0)
        return 0;
    const auto wanted = (after.on_cpu - before.on_cpu) + (after.waiting - before.waiting);
    return std::clamp(static_cast<double>(wanted.count()) / static_cast<double>(wall.count()), 0.0, 1.0);
}

} // namespace asio_blocking::detail
