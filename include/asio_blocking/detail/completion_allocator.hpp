// Lets the owner of a queued completion lend memory of its own for the executor's queue entry,
// so that handing a result back costs no heap allocation; and finds io_context executors.
#ifndef ASIO_BLOCKING_DETAIL_COMPLETION_ALLOCATOR_HPP
#define ASIO_BLOCKING_DETAIL_COMPLETION_ALLOCATOR_HPP

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/recycling_allocator.hpp>

#include <cstddef>
#include <cstdint>
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

/// Allocates from `Lender::lend_completion_memory` when it has a block, else from Asio's
/// per-thread recycling allocator. Only for executors that free the entry before running it
/// (an io_context's): an adapter such as a strand may keep an allocation made with a
/// function's allocator alive after the function has run. The lender outlives every block.
template <typename Lender, typename T = void>
class completion_allocator {
public:
    using value_type = T;
    template <typename U>
    struct rebind {
        using other = completion_allocator<Lender, U>;
    };

    explicit completion_allocator(Lender* lender) noexcept
        : lender_(lender)
    {
    }

    template <typename U>
    completion_allocator(const completion_allocator<Lender, U>& other) noexcept
        : lender_(other.lender_)
    {
    }

    T* allocate(std::size_t n)
    {
        if (void* p = lender_->lend_completion_memory(n * sizeof(T), alignof(T)))
            return static_cast<T*>(p);
        return boost::asio::recycling_allocator<T>().allocate(n);
    }

    void deallocate(T* p, std::size_t n) noexcept
    {
        if (!lender_->take_back_completion_memory(p))
            boost::asio::recycling_allocator<T>().deallocate(p, n);
    }

    template <typename U>
    bool operator==(const completion_allocator<Lender, U>& other) const noexcept
    {
        return lender_ == other.lender_;
    }

private:
    template <typename, typename>
    friend class completion_allocator;
    Lender* lender_;
};

} // namespace asio_blocking::detail

#endif
