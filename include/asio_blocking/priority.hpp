// Priorities of blocking calls, and the executor property that carries one.
#ifndef ASIO_BLOCKING_PRIORITY_HPP
#define ASIO_BLOCKING_PRIORITY_HPP

namespace asio_blocking {

/// Scheduling class of a call. Higher starts first; FIFO within a level.
/**
 * A waiting call is never starved: each time a call of a higher level is started while a lower
 * level has calls waiting, that level ages by one; after `priority_ageing_limit` such starts its
 * oldest call goes next. So the oldest call of a level starts within
 * 2 * `priority_ageing_limit` + 1 starts of reaching the head of its level.
 */
enum class priority : unsigned char { low = 0, normal = 1, high = 2 };

/// Starts of higher-priority calls a waiting lower-priority call tolerates before it goes next.
inline constexpr unsigned priority_ageing_limit = 8;

/// Executor property giving the priority of work submitted through a `blocking_pool` executor.
/**
 * @code
 * auto urgent = boost::asio::require(pool.get_executor(), asio_blocking::with_priority(priority::high));
 * boost::asio::post(urgent, job);                       // posted at high priority
 * async_blocking(urgent, io.get_executor(), fn, token); // runs fn at high priority
 * @endcode
 */
struct with_priority {
    template <typename T>
    static constexpr bool is_applicable_property_v = true;
    static constexpr bool is_requirable = true;
    static constexpr bool is_preferable = true;
    using polymorphic_query_result_type = asio_blocking::priority;

    constexpr with_priority() noexcept = default;
    constexpr explicit with_priority(asio_blocking::priority p) noexcept
        : level(p)
    {
    }

    asio_blocking::priority level = asio_blocking::priority::normal;
};

} // namespace asio_blocking

#endif
