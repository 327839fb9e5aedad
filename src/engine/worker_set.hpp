// The pool's worker records: spawning threads, the idle stack (LIFO), the busy list, indices, retirement.
#ifndef ASIO_BLOCKING_SRC_ENGINE_WORKER_SET_HPP
#define ASIO_BLOCKING_SRC_ENGINE_WORKER_SET_HPP

#include "growth_policy.hpp"
#include "held_batches.hpp"

#include "../cpu_demand.hpp"

#include <asio_blocking/detail/operation.hpp>

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <vector>

namespace asio_blocking::detail {

/// One worker thread's record. Records are kept (and reused) for the engine's lifetime, so a
/// late notify on one is at worst a spurious wake-up. Guarded by the engine's mutex.
struct worker {
    std::condition_variable cv;
    operation* handoff = nullptr;                  // given to it while parked
    operation* current = nullptr;                  // the call it runs
    std::chrono::steady_clock::time_point since{}; // start of `current`
    worker* busy_next = nullptr;                   // the busy list, in start order
    worker* busy_prev = nullptr;
    std::size_t index = 0;
    pid_t tid = 0; // the OS's id of its thread
    // Its CPU clock and the monitor's last reading of it, in the call that started at
    // `cpu_seen_since` (see coordinator::sample_cpu_locked); `in_call` while inside fn.
    std::optional<thread_cpu_clock> cpu_clock;
    thread_times cpu_seen{};
    std::chrono::steady_clock::time_point cpu_seen_at{};
    std::chrono::steady_clock::time_point cpu_seen_since{};
    std::atomic<bool> in_call{false};
    // Set with every notify meant for it while parked: a worker polling before it sleeps (see
    // idle_spin) sees a hand-off without the lock.
    std::atomic<bool> poked{false};
    // Batches of its finished calls it has yet to post; the monitor posts them if a call is long.
    held_batches held;
    bool may_hold = false; // in its current call: it may hold batches (they come and go)
    bool parked = false;
    bool exit_requested = false;
};

class worker_set {
public:
    using steady_time = std::chrono::steady_clock::time_point;

    /// Counts a thread as starting and sets a record aside for it (see reserved_record()).
    void reserve();
    /// A record set aside by reserve(), for the thread about to be spawned.
    worker* reserved_record() noexcept;
    /// The thread for `w` (from reserved_record()) did not start.
    void unreserve(worker* w) noexcept;
    /// Starts the thread for `w` running `entry(arg)`; an errno value on failure.
    static int spawn(void* (*entry)(void*), void* arg, std::size_t stack_size) noexcept;
    /// The thread of `w` is running: gives it the lowest free index. Returns the index.
    std::size_t started(worker* w);
    /// `w` leaves (its thread finishes its exit hook uncounted).
    void retire(worker* w) noexcept;

    std::size_t threads() const noexcept { return threads_; }
    std::size_t starting() const noexcept { return starting_; }
    std::size_t busy() const noexcept { return busy_; }
    std::size_t idle() const noexcept { return idle_.size(); }
    /// idle(), readable without the engine's lock (sequentially consistent: see
    /// submission_inbox).
    std::size_t idle_hint() const noexcept { return idle_hint_.load(std::memory_order_seq_cst); }

    /// `w` waits for work: the most recently parked worker is woken first.
    void park(worker* w) noexcept
    {
        idle_.push_back(w); // room reserved by reserve()
        w->parked = true;
        publish_idle();
    }
    /// The most recently parked worker, no longer parked; nullptr if none.
    worker* unpark_latest() noexcept
    {
        if (idle_.empty())
            return nullptr;
        worker* w = idle_.back();
        idle_.pop_back();
        w->parked = false;
        publish_idle();
        return w;
    }
    /// `w` stops waiting without being handed work (timed out, told to leave, stopped).
    void unpark(worker* w) noexcept;
    /// Asks parked workers beyond `keep` threads to leave, oldest-parked first.
    void ask_parked_to_leave(std::size_t keep) noexcept;
    /// Workers told to leave that are still here stay after all (parked again), up to `keep`.
    void recall_leaving(std::size_t keep) noexcept;
    void wake_all_parked() noexcept;

    /// `w` runs `op` from `now` on.
    void begin_call(worker* w, operation* op, steady_time now) noexcept;
    void end_call(worker* w) noexcept;
    /// Start of the longest-running call; max() if none runs.
    steady_time oldest_call_start() const noexcept { return busy_head_ ? busy_head_->since : steady_time::max(); }
    /// The thread running the longest-running call; 0 if none runs.
    pid_t oldest_call_thread() const noexcept { return busy_head_ ? busy_head_->tid : 0; }
    /// Calls f(worker*) for up to `limit` running workers, longest-running first.
    template <typename F>
    void for_each_busy(std::size_t limit, F&& f) const
    {
        for (worker* w = busy_head_; w && limit > 0; w = w->busy_next, --limit)
            f(w);
    }
    /// What the OS says thread `tid` of this process is doing (reads /proc: not under a lock).
    static thread_activity activity_of(pid_t tid) noexcept;
    template <typename F>
    void for_each_running(F&& f) const
    {
        for (worker* w = busy_head_; w; w = w->busy_next)
            f(w->current);
    }

    /// Workers asked to leave that have not left yet (they no longer count).
    std::size_t leaving() const noexcept { return leaving_; }

private:
    void publish_idle() noexcept { idle_hint_.store(idle_.size(), std::memory_order_seq_cst); }

    std::list<worker> records_;     // every record ever made; never shrinks
    std::vector<worker*> spare_;    // records of threads gone, for reuse
    std::vector<worker*> reserved_; // records set aside for threads about to be spawned
    std::vector<worker*> idle_;     // a stack: back() is the most recently parked
    std::vector<bool> index_used_;
    worker* busy_head_ = nullptr;
    worker* busy_tail_ = nullptr;
    std::size_t threads_ = 0;
    std::size_t starting_ = 0;
    std::size_t busy_ = 0;
    std::size_t leaving_ = 0;
    std::atomic<std::size_t> idle_hint_{0};
};

} // namespace asio_blocking::detail

#endif
