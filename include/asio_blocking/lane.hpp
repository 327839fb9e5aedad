// lane: a per-class concurrency limit on a shared blocking_pool ("at most 15 database calls").
#ifndef ASIO_BLOCKING_LANE_HPP
#define ASIO_BLOCKING_LANE_HPP

#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/lane_metrics.hpp>

#include <cstddef>
#include <string>

namespace asio_blocking {

/// At most `limit` of the lane's calls run (or wait in the pool's queue) at once.
/**
 * The others wait in the lane, in FIFO order, cancellable, occupying neither pool threads nor
 * queue slots, so one lane cannot starve another:
 * @code
 * asio_blocking::lane db{pool, 15, "db"}; // 15 = connections in the database pool
 * asio_blocking::lane fs{pool, 4, "fs"};
 * co_await async_blocking(db, io_ex, [&] { return query(sql); }, use_awaitable);
 * @endcode
 * The state behind a lane belongs to its pool and lives as long as the pool; the `lane` object
 * is a cheap handle and may be destroyed while its calls are pending.
 */
class lane {
public:
    /// Adds a lane to `pool`. Throws std::invalid_argument if `limit` is 0, and
    /// std::length_error if `pool` already has 65,535 lanes (its calls keep their lane as a
    /// 16-bit index; lanes are never removed, so create them once, not per request).
    lane(blocking_pool& pool, std::size_t limit, std::string name = "lane");

    /// An executor of the pool bound to this lane: `post` through it respects the limit too.
    blocking_pool::executor_type get_executor() const noexcept
    {
        return blocking_pool::executor_type(pool_, std::allocator<void>(), 0, detail::call_settings{core_});
    }

    blocking_pool& pool() const noexcept { return *pool_; }

    /// Changes the limit; a higher one admits waiting calls at once.
    void set_limit(std::size_t limit);

    lane_metrics metrics() const;

    /// @private The lane's state; owned by the pool's engine, valid as long as it lives.
    const detail::lane_state* core() const noexcept { return core_; }

private:
    blocking_pool* pool_;
    detail::lane_state* core_;
};

} // namespace asio_blocking

#endif
