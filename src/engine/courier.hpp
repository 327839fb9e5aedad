// The pool's courier thread: posts finished calls' batches to their io_contexts for workers in a
// lowered OS scheduling class, so that no low-priority thread ever holds an event loop's lock.
#ifndef ASIO_BLOCKING_SRC_ENGINE_COURIER_HPP
#define ASIO_BLOCKING_SRC_ENGINE_COURIER_HPP

#include <asio_blocking/detail/caller_registry.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

namespace asio_blocking::detail {

/// Why it exists: Asio's `post` to an io_context wakes the loop while holding the loop's
/// scheduler mutex. A worker at nice +10 doing that is preempted by the loop it just woke, and
/// the loop then waits on the mutex until the worker gets a CPU again, behind every other
/// runnable worker: milliseconds. The courier runs at its starter's priority (a caller's thread,
/// not a worker), so the loop never waits long for it.
///
/// Hand-over is lock-free (a stack of registries, each handed over at most once per batch:
/// see caller_registry::deliver_batched), and the thread sleeps on a futex while there is
/// nothing to post: an idle pool's courier wakes no one.
class courier {
public:
    courier() = default;
    courier(const courier&) = delete;
    courier& operator=(const courier&) = delete;

    /// Starts the thread; call once, from a thread at the priority the courier should have.
    /// `on_exit` runs on the thread as its last act. False if it could not start.
    bool start(std::function<void()> on_exit);

    /// Queues `registry`'s pending batch (its `sending_` count and a reference already taken)
    /// for the courier to post; false before start() and after stop() (post it yourself).
    bool hand_over(caller_registry* registry) noexcept;

    /// The thread posts what it holds, then ends; returns it, to be joined (or detached).
    /// hand_over() fails from the moment it has taken its last batch.
    std::thread stop() noexcept;

private:
    // The stack's value while hand-over is refused: before start, and once the thread is done.
    static caller_registry* closed() noexcept { return reinterpret_cast<caller_registry*>(std::uintptr_t{1}); }

    void run();
    // Posts every batch handed over so far, oldest first; false if there was none.
    bool post_handed();

    std::atomic<caller_registry*> head_{closed()};
    // Bumped after a push onto an empty stack and at stop: the thread's futex.
    std::atomic<std::uint32_t> signal_{0};
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

} // namespace asio_blocking::detail

#endif
