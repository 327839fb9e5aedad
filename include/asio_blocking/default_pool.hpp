// The default pool of an execution context: where async_blocking(ex, fn, token) runs fn.
#ifndef ASIO_BLOCKING_DEFAULT_POOL_HPP
#define ASIO_BLOCKING_DEFAULT_POOL_HPP

#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/pool_options.hpp>

#include <boost/asio/execution_context.hpp>

namespace asio_blocking {

/// The pool `async_blocking(ex, fn, token)` uses for executors of `ctx`.
/**
 * Created with default (or configured) options on first use and owned by `ctx` as a service:
 * when `ctx` shuts down (its destructor, or `shutdown()`), handlers of calls still pending are
 * destroyed, the pool is stopped (waiting calls are aborted) and joined (running calls finish).
 * No static-destruction-order hazards. If `ctx` is itself a `blocking_pool`, that pool is its
 * default pool. Throws `std::logic_error` once `ctx` has shut down. Thread-safe.
 */
blocking_pool& default_pool(boost::asio::execution_context& ctx);

/// Sets the options of `ctx`'s default pool before it is first used.
/**
 * Throws `std::logic_error` if the default pool already exists or `ctx` is a `blocking_pool`,
 * and `std::invalid_argument` for bad options.
 */
void configure_default_pool(boost::asio::execution_context& ctx, pool_options options);

} // namespace asio_blocking

#endif
