// Tracks the async_blocking calls whose handlers live in one execution context, so that the
// context's shutdown can destroy them instead of a worker later touching a dead context.
#ifndef ASIO_BLOCKING_DETAIL_CONTEXT_LINK_HPP
#define ASIO_BLOCKING_DETAIL_CONTEXT_LINK_HPP

#include <asio_blocking/detail/operation.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace asio_blocking::detail {

/// Base of async_blocking operations: a claim flag deciding who completes the caller.
/**
 * The worker (result ready), a cancellation, the pool (abort) and the caller's context
 * (shutdown) may all try to finish the caller's side; exactly one `try_claim()` succeeds.
 */
class async_operation : public operation {
public:
    bool try_claim() noexcept { return !claimed_.exchange(true, std::memory_order_acq_rel); }
    bool claimed() const noexcept { return claimed_.load(std::memory_order_acquire); }

    /// The caller's context is shutting down: destroy the handler without invoking it.
    virtual void destroy_completion() noexcept = 0;

    async_operation* link_next_ = nullptr;
    async_operation* link_prev_ = nullptr;

protected:
    ~async_operation() = default;

private:
    std::atomic<bool> claimed_{false};
};

/// The registry of one execution context (see context_service).
class context_link {
public:
    /// Registers `op`; false if the context is already shutting down.
    bool add(async_operation* op);

    /// Unregisters `op` and runs `send` (which hands `op`'s completion to the context) under
    /// the registry lock, so the context cannot finish shutting down in between. `op` may be
    /// gone once `send` returns: some executors run the handler inline even when posted to.
    template <typename Send>
    void deliver(async_operation* op, Send&& send)
    {
        std::lock_guard lk(mutex_);
        unlink_locked(op);
        send();
    }

    /// Called once, from the context's shutdown: claims every registered op, waits for ops
    /// claimed elsewhere to finish delivering, then destroys the claimed ones' handlers.
    void shutdown() noexcept;

private:
    void unlink_locked(async_operation* op) noexcept;

    std::mutex mutex_;
    std::condition_variable delivered_;
    async_operation* head_ = nullptr;
    bool alive_ = true;
};

} // namespace asio_blocking::detail

#endif
