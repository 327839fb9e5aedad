// Calls with a queue deadline, ordered by latest start; and saturating deadline arithmetic.
#ifndef ASIO_BLOCKING_SRC_ENGINE_DEADLINE_SET_HPP
#define ASIO_BLOCKING_SRC_ENGINE_DEADLINE_SET_HPP

#include <asio_blocking/detail/operation.hpp>

#include <chrono>
#include <map>
#include <set>
#include <utility>

namespace asio_blocking::detail {

using steady_time = std::chrono::steady_clock::time_point;

/// `now + d`, saturating: a duration too long to represent (`max()`) means never (`max()`),
/// and a negative one means `now`.
inline steady_time saturating_after(steady_time now, std::chrono::steady_clock::duration d) noexcept
{
    if (d <= std::chrono::steady_clock::duration::zero())
        return now;
    if (d >= steady_time::max() - now)
        return steady_time::max();
    return now + d;
}

class deadline_set {
public:
    bool empty() const noexcept { return by_time_.empty(); }

    /// Adds `op`, which must start by `latest` (never `max()`: that is no deadline).
    void add(operation* op, steady_time latest)
    {
        by_time_.emplace(latest, op);
        by_op_.emplace(op, latest);
        op->has_deadline_ = true;
    }

    /// Forgets `op`'s deadline, if it has one.
    void remove(operation* op) noexcept
    {
        if (!op->has_deadline_)
            return;
        op->has_deadline_ = false;
        const auto it = by_op_.find(op);
        by_time_.erase({it->second, op});
        by_op_.erase(it);
    }

    /// The earliest deadline; `max()` if none.
    steady_time earliest() const noexcept { return by_time_.empty() ? steady_time::max() : by_time_.begin()->first; }

    /// The call whose deadline is earliest and not after `now` (removed from the set), or nullptr.
    operation* pop_expired(steady_time now) noexcept
    {
        if (by_time_.empty() || by_time_.begin()->first > now)
            return nullptr;
        operation* op = by_time_.begin()->second;
        remove(op);
        return op;
    }

    void clear() noexcept
    {
        for (auto& [op, at] : by_op_)
            op->has_deadline_ = false;
        by_time_.clear();
        by_op_.clear();
    }

private:
    std::set<std::pair<steady_time, operation*>> by_time_;
    std::map<operation*, steady_time> by_op_;
};

} // namespace asio_blocking::detail

#endif
