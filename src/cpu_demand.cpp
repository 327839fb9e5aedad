// How much CPU a running worker wants: its CPU time, or all of a CPU while it is runnable.
#include "cpu_demand.hpp"

#include <algorithm>

namespace asio_blocking::detail {

double cpu_demand(std::chrono::nanoseconds cpu_before, std::chrono::nanoseconds cpu_after,
                  std::chrono::nanoseconds wall, thread_state_now state) noexcept
{
    if (state == thread_state_now::runnable)
        return 1.0;
    if (wall.count() <= 0)
        return 0;
    const auto used = cpu_after - cpu_before;
    return std::clamp(static_cast<double>(used.count()) / static_cast<double>(wall.count()), 0.0, 1.0);
}

} // namespace asio_blocking::detail
