// The operation behind one async_blocking call: owns the handler, fn, the result and the work
// guards, in one allocation made with the handler's associated allocator. Kept small: a queued
// call is this object and nothing else (test/async_blocking_test.cpp pins its size).
#ifndef ASIO_BLOCKING_DETAIL_BLOCKING_OP_HPP
#define ASIO_BLOCKING_DETAIL_BLOCKING_OP_HPP

#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/detail/caller_registry.hpp>
#include <asio_blocking/detail/context_service.hpp>
#include <asio_blocking/detail/engine.hpp>
#include <asio_blocking/detail/io_context_executor.hpp>
#include <asio_blocking/detail/operation_allocator.hpp>
#include <asio_blocking/error.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace asio_blocking::detail {

/// fn's result type: what it returns when called with a std::stop_token if it accepts one.
template <typename F>
struct blocking_result {
    static constexpr bool takes_stop_token = std::is_invocable_v<F, std::stop_token>;
    using invoke_type =
        std::conditional_t<takes_stop_token, std::invoke_result<F, std::stop_token>, std::invoke_result<F>>;
    using type = std::decay_t<typename invoke_type::type>;
};

template <typename F>
using blocking_result_t = typename blocking_result<std::decay_t<F>>::type;

template <typename R>
struct blocking_signature {
    using type = void(std::exception_ptr, R);
};

template <>
struct blocking_signature<void> {
    using type = void(std::exception_ptr);
};

inline std::exception_ptr aborted_exception()
{
    return std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted));
}

template <typename Handler, typename IoExecutor, typename F, typename R>
class blocking_op final : public async_operation {
    static_assert(std::is_void_v<R> || std::is_default_constructible_v<R>,
                  "asio_blocking::async_blocking: fn's result type must be default-constructible, because a "
                  "call that fails or is cancelled delivers a default value beside the exception. Return "
                  "std::optional<T> (or another default-constructible wrapper) instead.");
    static_assert(std::is_void_v<R> || std::is_move_constructible_v<R>,
                  "asio_blocking::async_blocking: fn's result type must be move-constructible.");

    using handler_executor = boost::asio::associated_executor_t<Handler, IoExecutor>;
    using handler_allocator = boost::asio::associated_allocator_t<Handler>;
    // As Asio's own operations do: the default allocator becomes a per-thread recycling one
    // (ours: Asio's adds a byte per block, which costs a queued call a 16-byte larger chunk).
    using base_allocator = std::conditional_t<std::is_same_v<handler_allocator, std::allocator<void>>,
                                              operation_allocator<void>, handler_allocator>;
    using alloc_type = typename std::allocator_traits<base_allocator>::template rebind_alloc<blocking_op>;
    using alloc_traits = std::allocator_traits<alloc_type>;
    using tracked_io_executor = std::decay_t<decltype(boost::asio::prefer(
        std::declval<const IoExecutor&>(), boost::asio::execution::outstanding_work.tracked))>;
    using tracked_handler_executor = std::decay_t<decltype(boost::asio::prefer(
        std::declval<const handler_executor&>(), boost::asio::execution::outstanding_work.tracked))>;
    struct no_result {};
    using result_type = std::conditional_t<std::is_void_v<R>, no_result, R>;
    // What the value storage (fn_ / result_ / error_) holds: fn until it has run, then its
    // result or its exception. A call never needs two of them at once.
    enum class holds : unsigned char { fn, nothing, result, error };
    // Without an executor of its own, the handler runs on the caller's executor, whose work
    // the handler's work guard already holds: no second guard (8 bytes less per call).
    struct no_executor_marker {};
    static constexpr bool handler_has_own_executor =
        !std::is_same_v<boost::asio::associated_executor_t<Handler, no_executor_marker>, no_executor_marker>;
    // A handler on a plain io_context executor (the common callback's) keeps no executor: the
    // handler's context's caller_registry keeps the context running while the call is pending,
    // and the completion is posted to the context (8 bytes and a work count less per call).
    static constexpr caller_work handler_work_keeper = is_plain_io_context_executor<tracked_handler_executor>::value
                                                           ? caller_work::kept_by_registry
                                                           : caller_work::kept_by_call;
    static constexpr bool keeps_handler_work = handler_work_keeper == caller_work::kept_by_call;

    static base_allocator base_allocator_of(const Handler& handler) noexcept
    {
        if constexpr (std::is_same_v<handler_allocator, std::allocator<void>>)
            return base_allocator();
        else
            return base_allocator(boost::asio::get_associated_allocator(handler));
    }

public:
    template <typename H, typename G>
    static blocking_op* create(H&& handler, const IoExecutor& io_ex, G&& fn)
    {
        alloc_type alloc(base_allocator_of(handler));
        blocking_op* p = alloc_traits::allocate(alloc, 1);
        try {
            return ::new (static_cast<void*>(p))
                blocking_op(alloc, std::forward<H>(handler), io_ex, std::forward<G>(fn));
        } catch (...) {
            alloc_traits::deallocate(alloc, p, 1);
            throw;
        }
    }

    /// Registers with the handler's context, connects the cancellation slot and submits.
    /// `io_ex` is the one create() was given.
    void start(const call_target& target, const IoExecutor& io_ex)
    {
        engine& core = target.pool->core();
        priority_ = target.settings.prio;
        kind_ = op_kind::async_call;

        boost::asio::execution_context& handler_ctx = handler_context(io_ex);
        if (&handler_ctx != static_cast<boost::asio::execution_context*>(target.pool)) {
            registry_ = caller_registry::link(handler_ctx, this);
            if (!registry_) {
                // The caller's context is already shutting down: nothing may be delivered to it.
                (void)try_claim();
                destroy_fn();
                destroy_completion();
                release();
                return;
            }
        }
        link_caller_work(handler_ctx);

        auto slot = boost::asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected())
            slot.template emplace<cancel_handler>(this, &core);

        switch (core.submit(this, target.settings)) {
        case engine::admission::accepted:
            return;
        case engine::admission::refused_stopped:
            abort_from(&core, aborted_exception());
            return;
        case engine::admission::refused_full:
            abort_from(&core, std::make_exception_ptr(boost::system::system_error(make_error_code(error::queue_full))));
            return;
        }
    }

    outcome run() noexcept override
    {
        if (claimed())
            return outcome::skipped; // the caller is gone or was already completed
        // fn is destroyed (user code, on the worker, no lock held) before its result takes
        // its place in the storage.
        try {
            if constexpr (std::is_void_v<R>) {
                invoke_fn();
                destroy_fn();
            } else {
                R result(invoke_fn());
                destroy_fn();
                ::new (static_cast<void*>(&result_)) R(std::move(result));
                hold(holds::result);
            }
            return outcome::returned;
        } catch (...) {
            destroy_fn();
            ::new (static_cast<void*>(&error_)) std::exception_ptr(std::current_exception());
            hold(holds::error);
            return outcome::threw;
        }
    }

    caller_pending complete() noexcept override
    {
        destroy_fn(); // if skipped
        if (try_claim()) {
            release(); // the core's reference; the completion keeps the op alive
            return deliver({}, true, true, engine::handing_back());
        }
        // Abandoned or orphaned: the result is discarded here, on the worker.
        destroy_value();
        release();
        return caller_pending::others_or_unknown;
    }

    void abort(std::exception_ptr error) noexcept override { abort_from(engine::handing_back(), std::move(error)); }

    void invoke_completion() override { invoke_handler(nullptr, finished_by_); }

    std::stop_source stop_source() const noexcept override
    {
        if constexpr (blocking_result<F>::takes_stop_token)
            return stop_source_;
        else
            return std::stop_source(std::nostopstate);
    }

    void destroy_completion() noexcept override
    {
        {
            [[maybe_unused]] Handler doomed(std::move(handler_)); // destroyed here, not invoked
            if constexpr (keeps_handler_work)
                handler_work_.executor.~tracked_handler_executor();
            release_caller_work();
        }
        release();
    }

    void forget_caller_work() noexcept override { io_work_.reset(); }

private:
    // Runs on the handler's executor: hands the result to the handler.
    struct invoker {
        blocking_op* op;
        std::exception_ptr error; // set: deliver this instead of the op's own outcome
        const engine* finished_by;

        invoker(blocking_op* o, std::exception_ptr e, const engine* from) noexcept
            : op(o)
            , error(std::move(e))
            , finished_by(from)
        {
        }
        invoker(invoker&& other) noexcept
            : op(std::exchange(other.op, nullptr))
            , error(std::move(other.error))
            , finished_by(other.finished_by)
        {
        }
        invoker& operator=(invoker&&) = delete;
        ~invoker()
        {
            if (op) // never run: the context was destroyed with it queued
                op->destroy_completion();
        }
        void operator()() { std::exchange(op, nullptr)->invoke_handler(std::move(error), finished_by); }
    };

    struct cancel_handler {
        cancel_handler(blocking_op* o, engine* c) noexcept
            : op(o)
            , core(c)
        {
        }
        blocking_op* op;
        engine* core;
        void operator()(boost::asio::cancellation_type_t type) const { op->on_cancel(*core, type); }
    };

    template <typename H, typename G>
    blocking_op(const alloc_type& alloc, H&& handler, const IoExecutor& io_ex, G&& fn)
        : async_operation(handler_work_keeper)
        , handler_(std::forward<H>(handler))
        , alloc_(alloc)
    {
        ::new (static_cast<void*>(&fn_)) F(std::forward<G>(fn));
        if constexpr (keeps_handler_work) {
            try {
                ::new (static_cast<void*>(&handler_work_.executor))
                    tracked_handler_executor(boost::asio::prefer(boost::asio::get_associated_executor(handler_, io_ex),
                                                                 boost::asio::execution::outstanding_work.tracked));
            } catch (...) {
                destroy_fn();
                throw;
            }
        }
        // Outstanding work on both the caller's executor and the handler's, as co_spawn does;
        // once when they are the same.
        if constexpr (handler_has_own_executor) {
            try {
                if constexpr (std::is_same_v<handler_executor, IoExecutor>) {
                    if (!(boost::asio::get_associated_executor(handler_, io_ex) == io_ex))
                        io_work_.emplace(boost::asio::prefer(io_ex, boost::asio::execution::outstanding_work.tracked));
                } else {
                    io_work_.emplace(boost::asio::prefer(io_ex, boost::asio::execution::outstanding_work.tracked));
                }
            } catch (...) {
                if constexpr (keeps_handler_work)
                    handler_work_.executor.~tracked_handler_executor();
                destroy_fn();
                throw;
            }
        }
    }

    // handler_work_ is gone already: the completion (invoked or destroyed) always takes it.
    ~blocking_op() { destroy_value(); }

    boost::asio::execution_context& handler_context(const IoExecutor& io_ex) const noexcept
    {
        if constexpr (keeps_handler_work)
            return boost::asio::query(handler_work_.executor, boost::asio::execution::context);
        else
            return boost::asio::get_associated_executor(handler_, io_ex).context();
    }

    decltype(auto) invoke_fn()
    {
        if constexpr (blocking_result<F>::takes_stop_token)
            return std::move(fn_)(stop_source_.get_token());
        else
            return std::move(fn_)();
    }

    void destroy_fn() noexcept
    {
        if (held() == holds::fn) {
            hold(holds::nothing);
            fn_.~F();
        }
    }

    // Destroys what the value storage holds, whatever it is.
    void destroy_value() noexcept
    {
        destroy_fn();
        if constexpr (!std::is_void_v<R>)
            if (held() == holds::result)
                result_.~R();
        if (held() == holds::error)
            error_.~exception_ptr();
        hold(holds::nothing);
    }

    std::exception_ptr take_error() noexcept
    {
        if (held() != holds::error)
            return nullptr;
        std::exception_ptr error = std::move(error_);
        error_.~exception_ptr();
        hold(holds::nothing);
        return error;
    }

    void abort_from(const engine* from, std::exception_ptr error) noexcept
    {
        destroy_fn();
        if (try_claim()) {
            release();
            deliver(std::move(error), false, true, from);
        } else {
            release();
        }
    }

    void release() noexcept
    {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            alloc_type alloc(alloc_);
            this->~blocking_op();
            alloc_traits::deallocate(alloc, this, 1);
        }
    }

    // Hands the completion to the handler's executor. The caller holds the claim; the invoker
    // (or the batch) owns the completion's reference from here on. The invoker never uses the
    // handler's allocator: the operation itself is the one allocation made with it, so an
    // exhausted handler allocator can only make the initiating function throw.
    // `from` is the engine that handed the call back, for the handler's completion_scope.
    caller_pending deliver(std::exception_ptr error, bool may_dispatch, bool fn_gone, const engine* from) noexcept
    {
        // An io_context handler (plain, or in an any_io_executor: use_awaitable's) joins the
        // context's pending batch. Not while fn still runs (an abandoned call): the value
        // storage is fn's.
        if (fn_gone && registry_) {
            if (io_context_of_handler()) { // the registry's context: the handler's
                if (error) {               // fn did not run: the storage is empty
                    ::new (static_cast<void*>(&error_)) std::exception_ptr(std::move(error));
                    hold(holds::error);
                }
                return registry_->deliver_batched(this, from);
            }
        }
        invoker inv(this, std::move(error), from);
        auto send = [&] {
            if constexpr (!keeps_handler_work) {
                // The registry keeps the context running until this post, itself work, is made.
                boost::asio::post(registry_->io_context().get_executor(), std::move(inv));
            } else if constexpr (is_pool_executor<tracked_handler_executor>::value) {
                // A handler bound to a pool runs there even after stop(), and its delivery never
                // waits for room (the monitor delivers expired calls).
                submit_completion(handler_work_.executor.core(),
                                  boost::asio::query(handler_work_.executor, asio_blocking::with_priority()),
                                  std::move(inv));
            } else if (may_dispatch && !registry_) {
                boost::asio::dispatch(handler_work_.executor, std::move(inv));
            } else {
                boost::asio::post(handler_work_.executor, std::move(inv));
            }
        };
        try {
            if (registry_)
                return registry_->deliver(this, send); // the context's shutdown waits for the post
            send();
        } catch (...) {
            // Out of memory: the handler was destroyed with the failed post's temporaries.
        }
        return caller_pending::others_or_unknown;
    }

    boost::asio::io_context* io_context_of_handler() const noexcept
    {
        if constexpr (!keeps_handler_work) {
            return &registry_->io_context(); // the handler's context is its registry's
        } else if constexpr (is_io_context_executor<tracked_handler_executor>::value) {
            return &handler_work_.executor.context();
        } else if constexpr (may_hold_io_context_executor<tracked_handler_executor>) {
            // Running the handler on the io_context directly is what the wrapper would do.
            const auto* io_ex = io_context_target(handler_work_.executor);
            return io_ex ? &io_ex->context() : nullptr;
        } else {
            return nullptr;
        }
    }

    void invoke_handler(std::exception_ptr error, const engine* finished_by)
    {
        auto slot = boost::asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected())
            slot.clear();
        Handler handler(std::move(handler_));
        // The caller's context needed the work only while the call was pending. Release it now:
        // once the handler has run (say, set a promise), the caller may destroy that context at
        // once, while this thread (say, a system_context one) is still unwinding.
        release_caller_work();
        // Calls the handler makes are continuations of this one (accepted while the pool drains).
        const completion_scope continuation(finished_by);
        // The handler's own executor keeps its work until the handler has run, as Asio does.
        // (Alive here: only the claimer delivers, and only destroy_completion also takes it.)
        // Without one, the handler runs inside a handler of its io_context (the batch or the
        // posted invoker), which is work until it returns.
        [[maybe_unused]] handler_work_holder handler_work(handler_work_);
        // An error passed in means fn may still run (abandoned): the storage is not ours then.
        if constexpr (std::is_void_v<R>) {
            if (!error)
                error = take_error();
            release(); // memory is freed before the upcall
            std::move(handler)(std::move(error));
        } else {
            if (error) {
                release();
                std::move(handler)(std::move(error), R());
            } else if (held() != holds::result) {
                error = take_error();
                release();
                std::move(handler)(std::move(error), R());
            } else {
                R result(std::move(result_));
                destroy_value();
                release();
                std::move(handler)(std::exception_ptr(), std::move(result));
            }
        }
    }

    // The op keeps outstanding work on ex's context while pending. If that context differs from
    // the handler's, it may be destroyed first: register with its work registry, whose shutdown
    // releases the work while the context is still alive. (A pool's work keeps only its engine
    // alive, which outlives it; the handler's context destroys the completion, work and all.)
    // Only a handler with an executor of its own can run elsewhere than ex.
    void link_caller_work(boost::asio::execution_context& handler_ctx)
    {
        if constexpr (handler_has_own_executor && !is_pool_executor<tracked_io_executor>::value) {
            if (!io_work_)
                return;
            boost::asio::execution_context& io_ctx = boost::asio::query(*io_work_, boost::asio::execution::context);
            if (&io_ctx == &handler_ctx)
                return;
            std::shared_ptr<work_registry> registry =
                boost::asio::use_service<context_service>(io_ctx).registry().work();
            io_work_link_.link.op = this;
            if (registry->add(&io_work_link_.link))
                io_work_link_.registry = std::move(registry);
            else
                io_work_.reset(); // the context is shutting down: let go of it now
        } else {
            (void)handler_ctx;
        }
    }

    void release_caller_work() noexcept
    {
        if constexpr (handler_has_own_executor) {
            if (io_work_link_.registry)
                io_work_link_.registry->release(&io_work_link_.link); // unless the context's shutdown did
            else
                io_work_.reset();
        }
    }

    void on_cancel(engine& core, boost::asio::cancellation_type_t type)
    {
        using ct = boost::asio::cancellation_type;
        if ((type & (ct::terminal | ct::partial | ct::total)) == ct::none || claimed())
            return;
        std::stop_source stop{std::nostopstate};
        const auto running =
            (type & (ct::terminal | ct::partial)) != ct::none ? engine::if_running::abandon : engine::if_running::keep;
        switch (core.cancel(this, running, stop)) {
        case engine::cancel_outcome::removed:
            abort_from(&core, aborted_exception());
            break;
        case engine::cancel_outcome::abandoned:
            // fn runs on, detached; its result is discarded by complete() on the worker.
            if (try_claim())
                deliver(aborted_exception(), false, false, &core); // fn still runs, and owns the storage
            if (stop.stop_possible())
                stop.request_stop();
            break;
        case engine::cancel_outcome::too_late:
            break;
        }
    }

    struct no_stop_source {};
    struct no_io_work {
        void reset() noexcept {}
    };

    holds held() const noexcept { return static_cast<holds>(value_state_); }
    void hold(holds h) noexcept { value_state_ = static_cast<unsigned char>(h); }

    // The handler's executor, tracked; taken (moved out or destroyed) by the completion.
    union handler_work_storage {
        handler_work_storage() noexcept {}
        ~handler_work_storage() {}
        tracked_handler_executor executor;
    };
    struct no_handler_work {};
    using handler_work_type = std::conditional_t<keeps_handler_work, handler_work_storage, no_handler_work>;
    // The handler's work, taken out of the op (which is freed before the handler runs).
    struct taken_handler_work {
        tracked_handler_executor executor;
        explicit taken_handler_work(handler_work_storage& from)
            : executor(std::move(from.executor))
        {
            from.executor.~tracked_handler_executor();
        }
    };
    struct no_taken_handler_work {
        explicit no_taken_handler_work(no_handler_work&) noexcept {}
    };
    using handler_work_holder = std::conditional_t<keeps_handler_work, taken_handler_work, no_taken_handler_work>;

    // Every byte here is paid by each queued call; rarely needed state lives in types that
    // only the calls needing it instantiate (no_stop_source, no_io_work, ...).
    Handler handler_;
    [[no_unique_address]] handler_work_type handler_work_;
    [[no_unique_address]] std::conditional_t<handler_has_own_executor, std::optional<tracked_io_executor>, no_io_work>
        io_work_;
    [[no_unique_address]] alloc_type alloc_;
    // The value storage: what held() says.
    union {
        F fn_;
        result_type result_;
        std::exception_ptr error_;
    };
    caller_registry* registry_ = nullptr;
    [[no_unique_address]] std::conditional_t<blocking_result<F>::takes_stop_token, std::stop_source, no_stop_source>
        stop_source_;
    // Set while io_work_ is registered with its (other) context's work registry.
    struct io_work_registration {
        std::shared_ptr<work_registry> registry;
        work_link link;
    };
    struct no_io_work_registration {};
    [[no_unique_address]] std::conditional_t<handler_has_own_executor, io_work_registration, no_io_work_registration>
        io_work_link_;
};

} // namespace asio_blocking::detail

#endif
