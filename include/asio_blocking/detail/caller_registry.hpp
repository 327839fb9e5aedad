// The registry of async_blocking calls whose handlers live in one execution context: the
// context's shutdown destroys them instead of a worker later touching a dead context; finished
// calls reach an io_context in batches, and the registry keeps an io_context running for them.
#ifndef ASIO_BLOCKING_DETAIL_CALLER_REGISTRY_HPP
#define ASIO_BLOCKING_DETAIL_CALLER_REGISTRY_HPP

#include <asio_blocking/detail/io_context_executor.hpp>
#include <asio_blocking/detail/operation.hpp>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>

namespace boost::asio {
class execution_context;
} // namespace boost::asio

namespace asio_blocking::detail {

class engine;

/// Who keeps a pending call's caller context running (holds outstanding work on it).
enum class caller_work : unsigned char {
    /// The call, with a tracked executor of its own.
    kept_by_call,
    /// The context's caller_registry, once for all such calls: an io_context handler's executor
    /// is only its context, which the registry knows, so the call keeps no executor at all.
    kept_by_registry,
};

/// Base of async_blocking operations: a claim flag deciding who completes the caller.
/**
 * The worker (result ready), a cancellation, the pool (abort) and the caller's context
 * (shutdown) may all try to finish the caller's side; exactly one `try_claim()` succeeds.
 *
 * The one-byte fields come first: they fill the tail padding of `operation`, so the counters
 * and flags of a queued call cost no bytes of their own.
 */
class async_operation : public operation {
public:
    explicit async_operation(caller_work work) noexcept
        : caller_work_(work)
    {
    }

    bool try_claim() noexcept { return !claimed_.exchange(true, std::memory_order_acq_rel); }
    bool claimed() const noexcept { return claimed_.load(std::memory_order_acquire); }

    /// The caller's context is shutting down: destroy the handler without invoking it.
    virtual void destroy_completion() noexcept = 0;

    /// Runs the handler with the operation's outcome; called by the claimer's batch on the
    /// handler's io_context. May throw what the handler throws.
    virtual void invoke_completion() = 0;

    /// The caller's context (ex's) is shutting down: drop the outstanding work held on it now,
    /// while it is alive. Called under its work_registry's lock.
    virtual void forget_caller_work() noexcept = 0;

private:
    std::atomic<bool> claimed_{false};

protected:
    /// The engine's reference and the completion's; the derived operation frees itself at 0.
    std::atomic<unsigned char> refs_{2};
    /// The derived operation's own state (which value its storage holds), kept here to share
    /// the padding. Written by one thread at a time, each handing over to the next.
    unsigned char value_state_ = 0;

public:
    const caller_work caller_work_;
    async_operation* link_next_ = nullptr;
    union {
        async_operation* link_prev_ = nullptr; // while registered with a caller_registry
        const engine* finished_by_;            // while in a ready batch: see deliver_batched
    };

protected:
    ~async_operation() = default;
};

/// An operation's entry in a work_registry (kept only by operations that may need one).
struct work_link {
    async_operation* op = nullptr;
    work_link* next = nullptr;
    work_link* prev = nullptr;
    bool linked = false; // guarded by the registry's lock
};

/// The calls holding outstanding work on one execution context for a caller whose handler
/// runs elsewhere. The context's shutdown releases that work while the context is alive, so a
/// late release never touches a destroyed context. Shared with those calls: it outlives the
/// context while they do.
class work_registry {
public:
    /// Registers `link` (its op set); false if the context is already shutting down.
    bool add(work_link* link);

    /// Unregisters `link` and has its op drop its work, unless the context's shutdown already did.
    void release(work_link* link) noexcept;

    /// Called once, from the context's shutdown: every registered op drops its work.
    void shutdown() noexcept;

private:
    void unlink_locked(work_link* link) noexcept;

    std::mutex mutex_;
    work_link* head_ = nullptr;
    bool alive_ = true;
};

/// The registry of one execution context (owned by its context_service).
/**
 * For calls whose work it keeps (caller_work::kept_by_registry: its context is then an
 * io_context), it holds one count of outstanding work on the context from the first such call's
 * registration until none is registered, waiting in a batch or being posted: run() does not
 * return while one is pending. The count is given back outside the lock and only once the
 * completion is posted (a post is work itself) or running in the batch.
 */
class caller_registry {
public:
    explicit caller_registry(boost::asio::execution_context& ctx) noexcept
        : ctx_(ctx)
    {
    }

    /// Registers `op` with the registry of `ctx`; nullptr if `ctx` is already shutting down.
    /// The registry is cached per thread, so a loop's calls look it up once, not per call.
    static caller_registry* link(boost::asio::execution_context& ctx, async_operation* op);

    /// The registry's context as the io_context it is: for calls whose handlers run on an
    /// io_context (batched, or whose work it keeps), whose registry is that io_context's.
    boost::asio::io_context& io_context() const noexcept { return static_cast<boost::asio::io_context&>(ctx_); }

    /// The registry of calls holding work on this context for handlers elsewhere.
    std::shared_ptr<work_registry> work() const { return work_; }

    /// Unregisters `op` and runs `send` (which hands `op`'s completion to the context); the
    /// context's shutdown waits for `send` to return. `send` runs outside the registry lock:
    /// posting may wake the context's thread, which may be registering its next call. `op`
    /// may be gone once `send` returns: some executors run the handler inline.
    /// Returns whether other calls of the context are still pending.
    template <typename Send>
    caller_pending deliver(async_operation* op, Send&& send)
    {
        caller_pending others;
        {
            std::lock_guard lk(mutex_);
            unlink_locked(op); // a call whose work the registry keeps stays counted until posted
            others = pending_locked();
            sending_.fetch_add(1, std::memory_order_relaxed);
        }
        struct done_sending {
            caller_registry& registry;
            caller_work work; // read before send: the op may be gone after it
            ~done_sending()
            {
                if (work == caller_work::kept_by_registry)
                    registry.kept_call_sent();
                // The deliverer's last touch of this registry (shutdown polls for it; see shutdown()).
                registry.sending_.fetch_sub(1, std::memory_order_release);
            }
        } guard{*this, op->caller_work_}; // also if send throws
        send();
        return others;
    }

    /// Unregisters `op` (claimed, its outcome stored in it; its handler runs on an io_context,
    /// this registry's context) and queues it to run its handler there. Completions arriving
    /// while a batch is pending join it: one post, and one wake-up of the loop, per batch
    /// instead of per call. `finished_by` (the engine that handed `op` back) is kept in `op` for
    /// its handler: it is stored in the link the registry no longer needs, as the op has no room
    /// of its own for it. Returns whether other calls of the context are still pending (or
    /// finished, in the batch).
    caller_pending deliver_batched(async_operation* op, const engine* finished_by);

    /// Called once, from the context's shutdown: claims every registered op, waits for ops
    /// claimed elsewhere to finish delivering, then destroys the claimed ones' handlers.
    void shutdown() noexcept;

    /// For the engine that took over this registry's post (see engine::take_batch_post): posts
    /// the pending batch as deliver_batched would have, then lets go of the registry (sending_
    /// and reference).
    void post_handed_batch() noexcept;
    /// The courier's link while this registry's batch waits for it (one hand-over per batch).
    caller_registry* courier_next_ = nullptr;

    // The memory of the one pending batch's queue entry (see completion_allocator).
    void* lend_completion_memory(std::size_t size, std::size_t align) noexcept;
    bool take_back_completion_memory(void* p) noexcept;

    // Shared by the context's service and the per-thread caches of registries.
    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept;

private:
    struct batch_runner;
    using context_work = std::optional<tracked_io_context_executor>;
    /// Registers `op`; false if the context is already shutting down.
    bool add(async_operation* op);
    void unlink_locked(async_operation* op) noexcept;
    caller_pending pending_locked() const noexcept
    {
        return head_ || ready_head_ ? caller_pending::others_or_unknown : caller_pending::none;
    }
    /// Takes one count of the context's work: kept_calls_ is rising from 0.
    void take_work_locked() noexcept;
    /// `n` calls whose work the registry keeps no longer need it; returns the work to give
    /// back, once the lock is released, if no call needs it any longer.
    [[nodiscard]] context_work kept_calls_gone_locked(std::size_t n) noexcept;
    /// A call whose work the registry keeps has been posted (or failed to be).
    void kept_call_sent() noexcept;
    /// Posts the batch runner (batch_posted_ already set); clears batch_posted_ if that fails.
    void post_batch() noexcept;
    void run_batch();

    boost::asio::execution_context& ctx_;
    std::mutex mutex_;
    std::condition_variable delivered_;
    async_operation* head_ = nullptr;
    // Finished calls waiting for the pending batch, oldest first (linked through link_next_).
    async_operation* ready_head_ = nullptr;
    async_operation* ready_tail_ = nullptr;
    bool batch_posted_ = false;
    bool batch_memory_lent_ = false;
    alignas(void*) unsigned char batch_memory_[64];
    std::atomic<std::size_t> sending_{0}; // deliveries between unlink and the end of their send
    std::atomic<std::size_t> refs_{1};
    bool alive_ = true;
    // Calls whose work the registry keeps: registered, in the ready list or being posted; and
    // of those, how many are in the ready list (the next batch takes them).
    std::size_t kept_calls_ = 0;
    std::size_t ready_kept_ = 0;
    context_work work_held_; // exactly while kept_calls_ > 0
    std::shared_ptr<work_registry> work_ = std::make_shared<work_registry>();
};

} // namespace asio_blocking::detail

#endif
