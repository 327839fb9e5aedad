// The narrow face of the compiled engine: only what the templates in the public headers call.
#ifndef ASIO_BLOCKING_DETAIL_ENGINE_HPP
#define ASIO_BLOCKING_DETAIL_ENGINE_HPP

#include <asio_blocking/detail/call_target.hpp>
#include <asio_blocking/detail/operation.hpp>

#include <atomic>
#include <cstddef>
#include <stop_token>

namespace asio_blocking::detail {

class caller_registry;

/// Test seam: while positive, each thread start fails with EAGAIN and decrements it.
extern std::atomic<int> inject_thread_start_failures;

/// The engine behind a blocking_pool. Its state (queues, workers, monitor) lives in `src/`;
/// this class only forwards to it. Kept alive by the pool, its threads and tracked work.
class engine {
public:
    enum class admission { accepted, refused_stopped, refused_full };
    enum class cancel_outcome { too_late, removed, abandoned };
    /// What a cancellation does to a call that has already started.
    enum class if_running { keep, abandon };

    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    /// Takes `op` (its priority and kind set) unless refused. A refused op is untouched and
    /// still owned by the caller. A plain op blocks here while the queue is full, except on a
    /// pool thread (or the monitor), which is admitted over capacity instead.
    admission submit(operation* op, const call_settings& settings);

    /// Takes `op` back if it has not started (`removed`: the caller must abort it). If it is
    /// running and `running == abandon`, marks it abandoned and copies its stop source to `stop`.
    cancel_outcome cancel(operation* op, if_running running, std::stop_source& stop);

    /// True on one of this engine's worker threads.
    bool running_in_this_thread() const noexcept;

    /// True on a thread of this pool while the pool may have no other thread: anything the
    /// caller submits here starts only after its own call returns, so waiting for it deadlocks.
    bool caller_is_sole_thread() const;

    std::size_t thread_count() const noexcept;

    /// The engine calling an operation's `complete()` or `abort()` on this thread: how an
    /// operation learns its pool when handed back, without keeping a pointer to it while queued.
    static const engine* handing_back() noexcept;

    /// On one of this engine's workers: takes over posting `registry`'s pending batch (its
    /// `sending_` count taken; the engine takes a reference) and returns true. A worker in a
    /// lowered OS scheduling class has the pool's courier post it from a thread at normal
    /// priority; a worker finishing tiny calls holds it for a few more deliveries. False
    /// elsewhere, or when neither applies: post it yourself.
    bool take_batch_post(caller_registry& registry) const noexcept;

    /// Tracked executors count as outstanding work, and keep the engine alive: a call delivering
    /// elsewhere may still hold one after the pool object and its threads are gone.
    void work_started() noexcept;
    void work_finished() noexcept;

protected:
    engine() = default;
    ~engine() = default;
};

/// While alive, marks this thread as running the completion handler of one of `e`'s calls:
/// the calls it makes are continuations, accepted while `e` drains (see blocking_pool::join).
class completion_scope {
public:
    explicit completion_scope(const engine* e) noexcept;
    ~completion_scope();
    completion_scope(const completion_scope&) = delete;
    completion_scope& operator=(const completion_scope&) = delete;

private:
    const engine* previous_;
};

} // namespace asio_blocking::detail

#endif
