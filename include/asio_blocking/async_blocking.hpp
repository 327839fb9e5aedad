// async_blocking: run a blocking callable on a pool, complete on the caller's executor.
#ifndef ASIO_BLOCKING_ASYNC_BLOCKING_HPP
#define ASIO_BLOCKING_ASYNC_BLOCKING_HPP

#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/default_pool.hpp>
#include <asio_blocking/detail/blocking_op.hpp>
#include <asio_blocking/lane.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/use_future.hpp>

#include <stdexcept>

#include <type_traits>
#include <utility>

namespace asio_blocking {
namespace detail {

template <typename T>
concept io_executor = boost::asio::execution::is_executor<T>::value;

template <typename F>
concept blocking_callable =
    std::is_invocable_v<std::decay_t<F>> || std::is_invocable_v<std::decay_t<F>, std::stop_token>;

template <typename F>
using blocking_signature_t = typename blocking_signature<blocking_result_t<F>>::type;

/// The handler use_future makes: its only use is a future someone will wait on.
template <typename Handler>
struct is_future_handler : std::false_type {
};

template <typename Signature, typename Allocator>
struct is_future_handler<boost::asio::detail::promise_handler<Signature, Allocator>> : std::true_type {
};

/// The initiation object: has an executor (for experimental::use_promise) and takes fn as an
/// argument (so deferred decay-copies it).
template <typename IoExecutor>
class initiate_async_blocking {
public:
    using executor_type = IoExecutor;

    initiate_async_blocking(const call_target& target, const IoExecutor& ex)
        : target_(target)
        , ex_(ex)
    {
    }

    executor_type get_executor() const noexcept { return ex_; }

    template <typename Handler, typename F>
    void operator()(Handler&& handler, F&& fn) const
    {
        // A future filled by the caller's own (and only) thread can never be waited for there.
        if constexpr (is_future_handler<std::decay_t<Handler>>::value)
            if (target_.pool->core().caller_is_sole_thread())
                throw std::logic_error("asio_blocking::async_blocking: use_future on a thread of a pool with "
                                       "max_threads = 1 would wait for itself (deadlock on get())");
        using op_type = blocking_op<std::decay_t<Handler>, IoExecutor, std::decay_t<F>, blocking_result_t<F>>;
        op_type::create(std::forward<Handler>(handler), ex_, std::forward<F>(fn))->start(target_, ex_);
    }

private:
    call_target target_;
    IoExecutor ex_;
};

template <typename Executor>
call_target default_target(const Executor& ex)
{
    if constexpr (is_pool_executor<Executor>::value)
        return ex.target();
    else
        return {&default_pool(boost::asio::query(ex, boost::asio::execution::context)), {}};
}

} // namespace detail

/// Runs `fn` on a pool and delivers its result through `token` on `ex`.
/**
 * @param ex The caller's executor: the handler's executor unless the handler has its own, and
 *        where outstanding work is kept while the call is pending. `fn` runs on the default pool
 *        of `ex`'s execution context (see `default_pool`), or, if `ex` is a `blocking_pool`
 *        executor, on that pool with the executor's priority, queue timeout and lane.
 * @param fn Callable as `fn()` or `fn(std::stop_token)`; decay-copied (or moved) into the
 *        operation; may be move-only. Destroyed on the worker after it runs, or wherever the
 *        call is aborted (never under a lock).
 *
 * @par Completion signature
 * `void(std::exception_ptr, R)`, with `R = std::decay_t<result of fn>` (default-constructible),
 * or `void(std::exception_ptr)` when fn returns void. The exception_ptr holds whatever `fn`
 * threw, or a `boost::system::system_error` with `boost::asio::error::operation_aborted`
 * (cancelled, pool stopped), `error::queue_full` or `error::deadline_expired`; `R` is then
 * value-initialized. Results are moved, never copied.
 *
 * @par Executor
 * The handler runs on its associated executor (default `ex`): never inside this function,
 * never on a pool thread unless that is the handler's executor. After a normal completion it is
 * dispatched; errors found at submission and cancellations are posted.
 *
 * @par Per-operation cancellation
 * Through the handler's associated cancellation slot:
 * - a call still waiting (queued, waiting for room, in its lane) is removed at once on
 *   `terminal`, `partial` or `total` cancellation; fn never runs and is destroyed;
 * - a running call cannot be interrupted: on `terminal` or `partial` the operation completes at
 *   once with `operation_aborted` while fn finishes detached on its worker (its result is
 *   discarded there; counted as `abandoned`); `total` is not honoured once fn has started.
 *   If fn takes a `std::stop_token`, stop is requested on it, so cooperative code can return
 *   early.
 *
 * @par Object lifetimes
 * The operation's storage comes from the handler's associated allocator; it is freed before the
 * handler is invoked, except when a running call is abandoned: then it is freed on the worker
 * once fn returns. If the handler's execution context is destroyed while the call is pending,
 * the handler is destroyed without being invoked and a late result is discarded.
 *
 * @par Thread safety
 * May be called from any thread, including pool threads. With `use_future` on a thread of a pool
 * whose `max_threads` is 1, targeting that pool, it throws `std::logic_error`: the future could
 * only be filled after the caller's own call returns, so waiting for it would deadlock.
 */
template <detail::io_executor Executor, detail::blocking_callable F,
          typename CompletionToken = boost::asio::default_completion_token_t<Executor>>
auto async_blocking(const Executor& ex, F&& fn, CompletionToken&& token = CompletionToken())
{
    return boost::asio::async_initiate<CompletionToken, detail::blocking_signature_t<F>>(
        detail::initiate_async_blocking<Executor>(detail::default_target(ex), ex), token, std::forward<F>(fn));
}

/// As above, but runs `fn` on `pool` (normal priority).
template <detail::io_executor Executor, detail::blocking_callable F,
          typename CompletionToken = boost::asio::default_completion_token_t<Executor>>
auto async_blocking(blocking_pool& pool, const Executor& ex, F&& fn, CompletionToken&& token = CompletionToken())
{
    return boost::asio::async_initiate<CompletionToken, detail::blocking_signature_t<F>>(
        detail::initiate_async_blocking<Executor>(detail::call_target{&pool, {}}, ex), token, std::forward<F>(fn));
}

/// As above, but runs `fn` on the pool of `target` with its priority, queue timeout and lane.
template <typename Allocator, unsigned int Bits, detail::io_executor Executor, detail::blocking_callable F,
          typename CompletionToken = boost::asio::default_completion_token_t<Executor>>
auto async_blocking(const blocking_pool::basic_executor_type<Allocator, Bits>& target, const Executor& ex, F&& fn,
                    CompletionToken&& token = CompletionToken())
{
    return boost::asio::async_initiate<CompletionToken, detail::blocking_signature_t<F>>(
        detail::initiate_async_blocking<Executor>(target.target(), ex), token, std::forward<F>(fn));
}

/// As above, but runs `fn` within `lane`'s concurrency limit on its pool.
template <detail::io_executor Executor, detail::blocking_callable F,
          typename CompletionToken = boost::asio::default_completion_token_t<Executor>>
auto async_blocking(lane& l, const Executor& ex, F&& fn, CompletionToken&& token = CompletionToken())
{
    return async_blocking(l.get_executor(), ex, std::forward<F>(fn), std::forward<CompletionToken>(token));
}

} // namespace asio_blocking

#endif
