// blocking_pool, its per-context service (registry of pending calls, default pool) and lanes.
#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/default_pool.hpp>
#include <asio_blocking/detail/completion_allocator.hpp>
#include <asio_blocking/detail/context_service.hpp>
#include <asio_blocking/detail/pool_core.hpp>
#include <asio_blocking/lane.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <stdexcept>

namespace asio_blocking {

// ---------------------------------------------------------------------------------------------
// blocking_pool

blocking_pool::blocking_pool(pool_options options)
    : core_(detail::pool_core::create(std::move(options)))
{
    boost::asio::use_service<detail::context_service>(*this).set_self(this);
}

blocking_pool::~blocking_pool()
{
    core_->shutdown();
    // Services (handler registries of calls delivering to this pool) go before the core.
    shutdown();
    destroy();
}

blocking_pool::executor_type blocking_pool::get_executor() noexcept
{
    return executor_type(this, std::allocator<void>(), 0, detail::call_settings{});
}

void blocking_pool::stop() noexcept
{
    core_->stop();
}

void blocking_pool::join()
{
    core_->join();
}

bool blocking_pool::join_for(std::chrono::steady_clock::duration timeout)
{
    return core_->join_for(timeout);
}

void blocking_pool::set_limits(std::size_t min_threads, std::size_t max_threads)
{
    core_->set_limits(min_threads, max_threads);
}

pool_metrics blocking_pool::metrics() const
{
    return core_->metrics();
}

// ---------------------------------------------------------------------------------------------
// lane

lane::lane(blocking_pool& pool, std::size_t limit, std::string name)
    : pool_(&pool)
    , core_(pool.core().add_lane(std::move(name), limit))
{
}

void lane::set_limit(std::size_t limit)
{
    pool_->core().set_lane_limit(core_, limit);
}

lane_metrics lane::metrics() const
{
    return pool_->core().metrics(core_);
}

// ---------------------------------------------------------------------------------------------
// The per-context registry and service

namespace detail {

bool work_registry::add(async_operation* op)
{
    std::lock_guard lk(mutex_);
    if (!alive_)
        return false;
    op->work_prev_ = nullptr;
    op->work_next_ = head_;
    if (head_)
        head_->work_prev_ = op;
    head_ = op;
    op->work_linked_ = true;
    return true;
}

void work_registry::unlink_locked(async_operation* op) noexcept
{
    (op->work_prev_ ? op->work_prev_->work_next_ : head_) = op->work_next_;
    if (op->work_next_)
        op->work_next_->work_prev_ = op->work_prev_;
    op->work_next_ = op->work_prev_ = nullptr;
    op->work_linked_ = false;
}

void work_registry::release(async_operation* op) noexcept
{
    // Under the lock, so the context's shutdown cannot finish (and the context die) between
    // the check and the release.
    std::lock_guard lk(mutex_);
    if (op->work_linked_) {
        unlink_locked(op);
        op->forget_caller_work();
    }
}

void work_registry::shutdown() noexcept
{
    std::lock_guard lk(mutex_);
    alive_ = false;
    while (async_operation* op = head_) {
        unlink_locked(op);
        op->forget_caller_work();
    }
}

bool context_link::add(async_operation* op)
{
    std::lock_guard lk(mutex_);
    if (!alive_)
        return false;
    op->link_prev_ = nullptr;
    op->link_next_ = head_;
    if (head_)
        head_->link_prev_ = op;
    head_ = op;
    return true;
}

void context_link::unlink_locked(async_operation* op) noexcept
{
    (op->link_prev_ ? op->link_prev_->link_next_ : head_) = op->link_next_;
    if (op->link_next_)
        op->link_next_->link_prev_ = op->link_prev_;
    op->link_next_ = op->link_prev_ = nullptr;
    if (!alive_ && head_ == nullptr)
        delivered_.notify_all();
}

/// The queued batch: runs every completion that was ready when it started. Its queue entry
/// lives in the link (one batch is pending at a time), so handing results back allocates
/// nothing.
struct context_link::batch_runner {
    context_link* link;

    using allocator_type = completion_allocator<context_link>;
    allocator_type get_allocator() const noexcept { return allocator_type(link); }

    void operator()() const { link->run_batch(); }
};

void context_link::deliver_batched(async_operation* op, boost::asio::io_context& ctx)
{
    std::lock_guard lk(mutex_);
    unlink_locked(op);
    op->link_next_ = nullptr;
    (ready_tail_ ? ready_tail_->link_next_ : ready_head_) = op;
    ready_tail_ = op;
    batch_ctx_ = &ctx;
    if (!batch_posted_)
        post_batch_locked();
}

void context_link::post_batch_locked()
{
    // Under the lock, so shutdown cannot slip in between; an io_context's post never runs the
    // function inline, so no handler runs under it. If the post fails (out of memory), the
    // next delivery tries again, and shutdown destroys whatever is left.
    try {
        boost::asio::post(batch_ctx_->get_executor(), batch_runner{this});
        batch_posted_ = true;
    } catch (...) {
    }
}

void context_link::run_batch()
{
    async_operation* batch;
    {
        std::lock_guard lk(mutex_);
        batch = std::exchange(ready_head_, nullptr);
        ready_tail_ = nullptr;
        batch_posted_ = false; // completions arriving from now on start the next batch
    }
    while (batch) {
        async_operation* op = batch;
        batch = op->link_next_; // read first: the op is freed before its handler runs
        op->link_next_ = nullptr;
        try {
            op->invoke_completion();
        } catch (...) {
            // The handler threw, out of run() as Asio's do. The rest of the batch goes first
            // in the next one, so none is lost.
            if (batch) {
                std::lock_guard lk(mutex_);
                async_operation* last = batch;
                while (last->link_next_)
                    last = last->link_next_;
                last->link_next_ = ready_head_;
                if (!ready_head_)
                    ready_tail_ = last;
                ready_head_ = batch;
                if (!batch_posted_)
                    post_batch_locked();
            }
            throw;
        }
    }
}

void* context_link::lend_completion_memory(std::size_t size, std::size_t align) noexcept
{
    if (batch_memory_lent_ || size > sizeof(batch_memory_) || align > alignof(void*))
        return nullptr;
    batch_memory_lent_ = true;
    return batch_memory_;
}

bool context_link::take_back_completion_memory(void* p) noexcept
{
    // Runs before the batch does (Asio frees a queue entry before invoking it), so the next
    // batch, posted once this one has started, finds the memory free.
    if (p != static_cast<void*>(batch_memory_))
        return false;
    batch_memory_lent_ = false;
    return true;
}

void context_link::shutdown() noexcept
{
    work_->shutdown();
    async_operation* orphans = nullptr;
    std::unique_lock lk(mutex_);
    alive_ = false;
    for (async_operation* op = head_; op;) {
        async_operation* next = op->link_next_;
        if (op->try_claim()) {
            unlink_locked(op);
            op->link_next_ = orphans;
            orphans = op;
        }
        op = next;
    }
    // The rest were claimed by a worker or a cancellation that is posting to this context now.
    delivered_.wait(lk, [&] { return head_ == nullptr; });
    // Deliverers finishing a send do not lock or notify (that would cost every call a second
    // lock), so their last few instructions are polled for: rare, and brief.
    while (sending_.load(std::memory_order_acquire) != 0)
        delivered_.wait_for(lk, std::chrono::milliseconds(1));
    // Finished calls waiting for a batch that will now never run (the context's scheduler
    // destroys the queued batch without running it).
    if (ready_tail_) {
        ready_tail_->link_next_ = orphans;
        orphans = std::exchange(ready_head_, nullptr);
        ready_tail_ = nullptr;
    }
    lk.unlock();
    while (async_operation* op = orphans) {
        orphans = op->link_next_;
        op->link_next_ = nullptr;
        op->destroy_completion();
    }
}

context_service::context_service(boost::asio::execution_context& ctx)
    : boost::asio::execution_context::service(ctx)
{
}

context_service::~context_service() = default;

void context_service::shutdown()
{
    link_.shutdown();
    std::unique_ptr<blocking_pool> pool;
    {
        std::lock_guard lk(mutex_);
        shut_down_ = true;
        pool = std::move(pool_);
    }
    pool.reset(); // stop, then join: running calls finish before the context goes away
}

blocking_pool& context_service::default_pool()
{
    if (self_)
        return *self_;
    std::lock_guard lk(mutex_);
    if (!pool_) {
        if (shut_down_)
            throw std::logic_error("asio_blocking::default_pool: the execution context has shut down");
        pool_ = std::make_unique<blocking_pool>(options_.value_or(pool_options{}));
    }
    return *pool_;
}

void context_service::configure(pool_options options)
{
    if (self_)
        throw std::logic_error("asio_blocking::configure_default_pool: a blocking_pool is its own default pool");
    validate(options);
    std::lock_guard lk(mutex_);
    if (pool_ || shut_down_)
        throw std::logic_error("asio_blocking::configure_default_pool: the default pool is already in use");
    options_ = std::move(options);
}

} // namespace detail

blocking_pool& default_pool(boost::asio::execution_context& ctx)
{
    return boost::asio::use_service<detail::context_service>(ctx).default_pool();
}

void configure_default_pool(boost::asio::execution_context& ctx, pool_options options)
{
    boost::asio::use_service<detail::context_service>(ctx).configure(std::move(options));
}

} // namespace asio_blocking
