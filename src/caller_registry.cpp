// The registry of async_blocking calls whose handlers live in one execution context, and the
// batches that hand finished calls to an io_context.
#include <asio_blocking/detail/caller_registry.hpp>
#include <asio_blocking/detail/completion_allocator.hpp>
#include <asio_blocking/detail/context_service.hpp>
#include <asio_blocking/detail/engine.hpp>

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <utility>

namespace asio_blocking::detail {

namespace {

/// The registry this thread linked its last call into: a loop's calls all go to one context,
/// so the service lookup (a lock and a search) is paid once per thread, not per call. Holds a
/// reference, so a registry whose context died is still safe to ask (it refuses, see link()).
struct cached_registry {
    boost::asio::execution_context* ctx = nullptr;
    caller_registry* registry = nullptr;

    ~cached_registry()
    {
        if (registry)
            registry->release();
    }
};

thread_local cached_registry last_registry;

} // namespace

caller_registry* caller_registry::link(boost::asio::execution_context& ctx, async_operation* op)
{
    cached_registry& cache = last_registry;
    if (cache.ctx == &ctx && cache.registry->add(op))
        return cache.registry;
    // Not cached, or cached for a context that has died (another may now live at its address).
    caller_registry& fresh = boost::asio::use_service<context_service>(ctx).registry();
    if (!fresh.add(op))
        return nullptr; // the context is shutting down
    if (cache.registry != &fresh) {
        fresh.add_ref();
        if (cache.registry)
            cache.registry->release();
        cache.registry = &fresh;
    }
    cache.ctx = &ctx;
    return &fresh;
}

bool work_registry::add(work_link* link)
{
    std::lock_guard lk(mutex_);
    if (!alive_)
        return false;
    link->prev = nullptr;
    link->next = head_;
    if (head_)
        head_->prev = link;
    head_ = link;
    link->linked = true;
    return true;
}

void work_registry::unlink_locked(work_link* link) noexcept
{
    (link->prev ? link->prev->next : head_) = link->next;
    if (link->next)
        link->next->prev = link->prev;
    link->next = link->prev = nullptr;
    link->linked = false;
}

void work_registry::release(work_link* link) noexcept
{
    // Under the lock, so the context's shutdown cannot finish (and the context die) between
    // the check and the release.
    std::lock_guard lk(mutex_);
    if (link->linked) {
        unlink_locked(link);
        link->op->forget_caller_work();
    }
}

void work_registry::shutdown() noexcept
{
    std::lock_guard lk(mutex_);
    alive_ = false;
    while (work_link* link = head_) {
        unlink_locked(link);
        link->op->forget_caller_work();
    }
}

void caller_registry::release() noexcept
{
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
        delete this;
}

bool caller_registry::add(async_operation* op)
{
    std::lock_guard lk(mutex_);
    if (!alive_)
        return false;
    op->link_prev_ = nullptr;
    op->link_next_ = head_;
    if (head_)
        head_->link_prev_ = op;
    head_ = op;
    if (op->caller_work_ == caller_work::kept_by_registry && kept_calls_++ == 0)
        take_work_locked();
    return true;
}

inline void caller_registry::take_work_locked() noexcept
{
    // An atomic increment: cheap under the lock (giving work back may stop the context, which
    // locks and wakes it, so that is done outside).
    work_held_.emplace(
        boost::asio::prefer(io_context().get_executor(), boost::asio::execution::outstanding_work.tracked));
}

inline caller_registry::context_work caller_registry::kept_calls_gone_locked(std::size_t n) noexcept
{
    kept_calls_ -= n;
    if (kept_calls_ == 0)
        return std::exchange(work_held_, std::nullopt);
    return std::nullopt;
}

void caller_registry::kept_call_sent() noexcept
{
    context_work release;
    {
        std::lock_guard lk(mutex_);
        release = kept_calls_gone_locked(1);
    }
}

void caller_registry::unlink_locked(async_operation* op) noexcept
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
struct caller_registry::batch_runner {
    caller_registry* link;

    using allocator_type = completion_allocator<caller_registry>;
    allocator_type get_allocator() const noexcept { return allocator_type(link); }

    void operator()() const { link->run_batch(); }
};

caller_pending caller_registry::deliver_batched(async_operation* op, const engine* finished_by)
{
    caller_pending others;
    {
        std::lock_guard lk(mutex_);
        unlink_locked(op);
        others = pending_locked();
        if (op->caller_work_ == caller_work::kept_by_registry)
            ++ready_kept_; // still counted in kept_calls_: the registry keeps its work until the batch runs
        op->finished_by_ = finished_by; // after the unlink: it shares link_prev_'s storage
        op->link_next_ = nullptr;
        (ready_tail_ ? ready_tail_->link_next_ : ready_head_) = op;
        ready_tail_ = op;
        if (batch_posted_)
            return others; // the pending batch takes it
        batch_posted_ = true;
        sending_.fetch_add(1, std::memory_order_relaxed);
    }
    // A lowered worker would hold the loop's scheduler lock at low priority: the courier posts.
    // A worker finishing tiny calls posts after a few more deliveries (see held_batches).
    if (finished_by && finished_by->take_batch_post(*this))
        return others;
    // Posted outside the lock: the post wakes the loop, which may preempt this worker at once
    // (a worker runs at a lower OS priority) and then need this lock to run the batch. The
    // context's shutdown waits for `sending_`, so it cannot slip in before the post.
    struct done_sending {
        std::atomic<std::size_t>& sending;
        ~done_sending() { sending.fetch_sub(1, std::memory_order_release); }
    } guard{sending_};
    post_batch();
    return others;
}

void caller_registry::post_handed_batch() noexcept
{
    post_batch();
    sending_.fetch_sub(1, std::memory_order_release); // as deliver_batched's done_sending
    release();
}

void caller_registry::post_batch() noexcept
{
    // An io_context's post never runs the function inline, so no handler runs here. If the
    // post fails (out of memory), the next delivery tries again, and shutdown destroys
    // whatever is left.
    try {
        boost::asio::post(io_context().get_executor(), batch_runner{this});
    } catch (...) {
        std::lock_guard lk(mutex_);
        batch_posted_ = false;
    }
}

void caller_registry::run_batch()
{
    async_operation* batch;
    context_work release;
    {
        std::lock_guard lk(mutex_);
        batch = std::exchange(ready_head_, nullptr);
        ready_tail_ = nullptr;
        batch_posted_ = false; // completions arriving from now on start the next batch
        if (ready_kept_ != 0)
            release = kept_calls_gone_locked(std::exchange(ready_kept_, 0));
    }
    // Given back outside the lock. This batch runs as one of the context's handlers, which
    // counts as work until it returns, so run() cannot return before its handlers have run.
    release.reset();
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
                bool post_now = false;
                {
                    std::lock_guard lk(mutex_);
                    std::size_t kept = 0;
                    async_operation* last = batch;
                    for (;; last = last->link_next_) {
                        kept += last->caller_work_ == caller_work::kept_by_registry;
                        if (!last->link_next_)
                            break;
                    }
                    last->link_next_ = ready_head_;
                    if (!ready_head_)
                        ready_tail_ = last;
                    ready_head_ = batch;
                    ready_kept_ += kept;
                    if (kept_calls_ == 0 && kept != 0)
                        take_work_locked();
                    kept_calls_ += kept;
                    post_now = !std::exchange(batch_posted_, true);
                }
                if (post_now)
                    post_batch();
            }
            throw;
        }
    }
}

void* caller_registry::lend_completion_memory(std::size_t size, std::size_t align) noexcept
{
    if (batch_memory_lent_ || size > sizeof(batch_memory_) || align > alignof(void*))
        return nullptr;
    batch_memory_lent_ = true;
    return batch_memory_;
}

bool caller_registry::take_back_completion_memory(void* p) noexcept
{
    // Runs before the batch does (Asio frees a queue entry before invoking it), so the next
    // batch, posted once this one has started, finds the memory free.
    if (p != static_cast<void*>(batch_memory_))
        return false;
    batch_memory_lent_ = false;
    return true;
}

void caller_registry::shutdown() noexcept
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
    kept_calls_ = ready_kept_ = 0;
    context_work release = std::exchange(work_held_, std::nullopt);
    lk.unlock();
    release.reset(); // while the context is still alive: its services are shutting down
    while (async_operation* op = orphans) {
        orphans = op->link_next_;
        op->link_next_ = nullptr;
        op->destroy_completion();
    }
}

} // namespace asio_blocking::detail
