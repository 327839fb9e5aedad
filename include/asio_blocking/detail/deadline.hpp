// Saturating deadline arithmetic: `now + d` that cannot overflow, so `duration::max()` means never.
#ifndef ASIO_BLOCKING_DETAIL_DEADLINE_HPP
#define ASIO_BLOCKING_DETAIL_DEADLINE_HPP

#include <chrono>

namespace asio_blocking::detail {

/// `now + d`, clamped to `time_point::max()` (which every caller reads as "never"). `now` is a
/// steady_clock reading, never negative, so a negative `d` cannot underflow.
inline std::chrono::steady_clock::time_point deadline_after(std::chrono::steady_clock::time_point now,
                                                            std::chrono::steady_clock::duration d) noexcept
{
    using time_point = std::chrono::steady_clock::time_point;
    if (d > time_point::max() - now)
        return time_point::max();
    return now + d;
}

} // namespace asio_blocking::detail

#endif
