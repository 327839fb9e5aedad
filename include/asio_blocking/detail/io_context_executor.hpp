// Recognises an io_context behind a completion handler's executor: its own executor type, or
// an any_io_executor (use_awaitable's) holding one. Such completions are delivered in batches.
#ifndef ASIO_BLOCKING_DETAIL_IO_CONTEXT_EXECUTOR_HPP
#define ASIO_BLOCKING_DETAIL_IO_CONTEXT_EXECUTOR_HPP

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace asio_blocking::detail {

/// An io_context's own executor type (any allocator, any properties).
template <typename Executor>
struct is_io_context_executor : std::false_type {
};

template <typename Allocator, std::uintptr_t Bits>
struct is_io_context_executor<boost::asio::io_context::basic_executor_type<Allocator, Bits>> : std::true_type {
};

/// An io_context's executor with the default allocator: nothing but its context (and property
/// bits that only tune how a function is submitted), so it can be remade from the context.
template <typename Executor>
struct is_plain_io_context_executor : std::false_type {
};

template <std::uintptr_t Bits>
struct is_plain_io_context_executor<boost::asio::io_context::basic_executor_type<std::allocator<void>, Bits>>
    : std::true_type {
};

/// The executor io_context::get_executor() returns, tracking outstanding work: what a
/// completion handler's executor usually is underneath an any_io_executor (use_awaitable's).
using tracked_io_context_executor = std::decay_t<decltype(boost::asio::prefer(
    std::declval<const boost::asio::io_context::executor_type&>(), boost::asio::execution::outstanding_work.tracked))>;

/// True for type-erased executors (any_io_executor and other any_executor types), which may
/// hold an io_context executor.
template <typename Executor>
inline constexpr bool may_hold_io_context_executor = requires(const Executor& ex)
{
    ex.template target<tracked_io_context_executor>();
};

/// The io_context executor inside `ex`, if that is exactly what it holds.
template <typename Executor>
const tracked_io_context_executor* io_context_target(const Executor& ex) noexcept
{
    if constexpr (may_hold_io_context_executor<Executor>)
        return ex.template target<tracked_io_context_executor>();
    else
        return nullptr;
}

} // namespace asio_blocking::detail

#endif
