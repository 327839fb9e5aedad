// The executor property bounding how long work may wait in the queue before it starts.
#ifndef ASIO_BLOCKING_QUEUE_TIMEOUT_HPP
#define ASIO_BLOCKING_QUEUE_TIMEOUT_HPP

#include <chrono>

namespace asio_blocking {

/// Executor property: work submitted through the executor that has not started within this
/// time of its submission never runs. An `async_blocking` call then completes with
/// `error::deadline_expired`; a posted function is destroyed. A timer drives the expiry, so
/// callers learn of it on time even when every worker is stuck. Zero (the default) and `max()`
/// mean none; the deadline saturates, it never overflows.
/**
 * @code
 * auto ex = boost::asio::require(pool.get_executor(), asio_blocking::with_queue_timeout(50ms));
 * auto [e, row] = co_await async_blocking(ex, io_ex, query_db, as_tuple(use_awaitable));
 * @endcode
 */
struct with_queue_timeout {
    template <typename T>
    static constexpr bool is_applicable_property_v = true;
    static constexpr bool is_requirable = true;
    static constexpr bool is_preferable = true;
    using polymorphic_query_result_type = std::chrono::steady_clock::duration;

    constexpr with_queue_timeout() noexcept = default;
    constexpr explicit with_queue_timeout(std::chrono::steady_clock::duration d) noexcept
        : duration(d)
    {
    }

    std::chrono::steady_clock::duration duration{0};
};

} // namespace asio_blocking

#endif
