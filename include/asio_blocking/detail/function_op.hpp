// The operation behind a plain post/dispatch/execute on a blocking_pool: run a function, no reply.
#ifndef ASIO_BLOCKING_DETAIL_FUNCTION_OP_HPP
#define ASIO_BLOCKING_DETAIL_FUNCTION_OP_HPP

#include <asio_blocking/detail/operation.hpp>

#include <memory>
#include <new>
#include <utility>

namespace asio_blocking::detail {

template <typename Function, typename Allocator>
class function_op final : public operation {
    using alloc_type = typename std::allocator_traits<Allocator>::template rebind_alloc<function_op>;
    using alloc_traits = std::allocator_traits<alloc_type>;

public:
    template <typename F>
    static function_op* create(const Allocator& a, F&& f)
    {
        alloc_type alloc(a);
        function_op* p = alloc_traits::allocate(alloc, 1);
        try {
            return ::new (static_cast<void*>(p)) function_op(alloc, std::forward<F>(f));
        } catch (...) {
            alloc_traits::deallocate(alloc, p, 1);
            throw;
        }
    }

    outcome run() noexcept override
    {
        try {
            std::move(function_)();
            return outcome::returned;
        } catch (...) {
            return outcome::threw; // counted as failed: a posted function has no one to tell
        }
    }

    caller_pending complete() noexcept override
    {
        destroy();
        return caller_pending::others_or_unknown;
    }
    void abort(std::exception_ptr) noexcept override { destroy(); }

    /// Destroys an op that was never submitted (refused).
    void destroy() noexcept
    {
        alloc_type alloc(alloc_);
        this->~function_op();
        alloc_traits::deallocate(alloc, this, 1);
    }

private:
    template <typename F>
    function_op(const alloc_type& a, F&& f)
        : function_(std::forward<F>(f))
        , alloc_(a)
    {
    }
    ~function_op() = default;

    Function function_;
    [[no_unique_address]] alloc_type alloc_;
};

} // namespace asio_blocking::detail

#endif
