// Lets the owner of a queued completion lend memory of its own for the executor's queue entry,
// so that handing a result back costs no heap allocation.
#ifndef ASIO_BLOCKING_DETAIL_COMPLETION_ALLOCATOR_HPP
#define ASIO_BLOCKING_DETAIL_COMPLETION_ALLOCATOR_HPP

#include <boost/asio/recycling_allocator.hpp>

#include <cstddef>

namespace asio_blocking::detail {

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
