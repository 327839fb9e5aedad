// Template bodies of blocking_pool::basic_executor_type.
#ifndef ASIO_BLOCKING_IMPL_BLOCKING_POOL_HPP
#define ASIO_BLOCKING_IMPL_BLOCKING_POOL_HPP

#include <asio_blocking/detail/engine.hpp>
#include <asio_blocking/detail/function_op.hpp>
#include <asio_blocking/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <type_traits>

namespace asio_blocking {
namespace detail {

/// True for the executors of a blocking_pool (and only those: not for wrappers such as strands).
template <typename T>
struct is_pool_executor : std::false_type {
};

template <typename Allocator, unsigned int Bits>
struct is_pool_executor<blocking_pool::basic_executor_type<Allocator, Bits>> : std::true_type {
};

/// Submits `f` as a function op of `kind`; throws queue_full on rejection, discards after stop.
template <typename Allocator, typename Function>
void submit_function(engine& core, const call_settings& settings, const Allocator& a, Function&& f, op_kind kind)
{
    using func_type = std::decay_t<Function>;
    auto* op = function_op<func_type, Allocator>::create(a, std::forward<Function>(f));
    op->priority_ = settings.prio;
    op->kind_ = kind;
    switch (core.submit(op, settings)) {
    case engine::admission::accepted:
        return;
    case engine::admission::refused_full:
        op->destroy();
        throw boost::system::system_error(make_error_code(error::queue_full));
    case engine::admission::refused_stopped:
        op->destroy(); // as with a stopped thread_pool: the function never runs
        return;
    }
}

/// Hands `f` (an async_blocking completion) to the pool its handler is bound to, bypassing
/// stop() and the queue's capacity: never blocks, and runs unless the pool is gone (then `f`
/// is destroyed unrun). Not through asio::post, which would wrap `f` beyond recognition.
template <typename Function>
void submit_completion(engine& core, priority prio, Function&& f)
{
    using func_type = std::decay_t<Function>;
    auto* op = function_op<func_type, std::allocator<void>>::create(std::allocator<void>(), std::forward<Function>(f));
    op->priority_ = prio;
    op->kind_ = op_kind::completion;
    if (core.submit(op, call_settings{nullptr, {}, prio}) != engine::admission::accepted)
        op->destroy();
}

} // namespace detail

template <typename Allocator, unsigned int Bits>
template <typename Function>
void blocking_pool::basic_executor_type<Allocator, Bits>::execute(Function&& f) const
{
    using func_type = std::decay_t<Function>;
    // Through a work-tracking executor, f continues work already counted: accepted while the
    // pool drains (see coordinator::accepting_locked).
    constexpr auto kind = (Bits & outstanding_work_tracked) != 0 ? detail::op_kind::tracked : detail::op_kind::plain;
    detail::engine& core = *core_;
    const bool may_run_inline = settings_.lane == nullptr && core.running_in_this_thread();

    if constexpr ((Bits & blocking_always) != 0) {
        if (may_run_inline) {
            func_type(std::forward<Function>(f))();
            return;
        }
        // Run on the pool and wait here until it has run (or was discarded by stop()).
        struct waiter {
            std::mutex mutex;
            std::condition_variable cv;
            bool done = false;
            std::exception_ptr error;
        } w;
        struct signal_when_done {
            waiter* w;
            func_type f;
            bool ran = false;
            signal_when_done(waiter* w_, func_type&& f_)
                : w(w_)
                , f(std::move(f_))
            {
            }
            signal_when_done(signal_when_done&& o) noexcept(std::is_nothrow_move_constructible_v<func_type>)
                : w(std::exchange(o.w, nullptr))
                , f(std::move(o.f))
            {
            }
            void operator()()
            {
                try {
                    std::move(f)();
                } catch (...) {
                    w->error = std::current_exception();
                }
            }
            ~signal_when_done()
            {
                if (w) {
                    std::lock_guard lk(w->mutex);
                    w->done = true;
                    w->cv.notify_one();
                }
            }
        };
        detail::submit_function(core, settings_, allocator_, signal_when_done(&w, func_type(std::forward<Function>(f))),
                                kind);
        std::unique_lock lk(w.mutex);
        w.cv.wait(lk, [&] { return w.done; });
        if (w.error)
            std::rethrow_exception(w.error);
    } else {
        if ((bits_ & blocking_never) == 0 && may_run_inline) {
            func_type(std::forward<Function>(f))();
            return;
        }
        detail::submit_function(core, settings_, allocator_, std::forward<Function>(f), kind);
    }
}

template <typename Allocator, unsigned int Bits>
std::size_t
blocking_pool::basic_executor_type<Allocator, Bits>::query(boost::asio::execution::occupancy_t) const noexcept
{
    return core_->thread_count();
}

template <typename Allocator, unsigned int Bits>
bool blocking_pool::basic_executor_type<Allocator, Bits>::running_in_this_thread() const noexcept
{
    return core_->running_in_this_thread();
}

template <typename Allocator, unsigned int Bits>
void blocking_pool::basic_executor_type<Allocator, Bits>::work_started() const noexcept
{
    core_->work_started();
}

template <typename Allocator, unsigned int Bits>
void blocking_pool::basic_executor_type<Allocator, Bits>::work_finished() const noexcept
{
    core_->work_finished();
}

} // namespace asio_blocking

#endif
