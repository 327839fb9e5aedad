// Where and how one call runs: the pool, its lane, priority and queue timeout.
#ifndef ASIO_BLOCKING_DETAIL_CALL_TARGET_HPP
#define ASIO_BLOCKING_DETAIL_CALL_TARGET_HPP

#include <asio_blocking/detail/operation.hpp>
#include <asio_blocking/priority.hpp>

#include <chrono>

namespace asio_blocking {
class blocking_pool;
}

namespace asio_blocking::detail {

class lane_state;

/// The per-call settings a `blocking_pool` executor carries besides its pool.
struct call_settings {
    lane_state* lane = nullptr;
    /// Longest wait before starting; 0 (or less) for none, `max()` for none either.
    std::chrono::steady_clock::duration queue_timeout{0};
    asio_blocking::priority prio = asio_blocking::priority::normal;

    friend bool operator==(const call_settings&, const call_settings&) = default;
};

struct call_target {
    blocking_pool* pool;
    call_settings settings;
};

} // namespace asio_blocking::detail

#endif
