// The compiled, non-template engine behind blocking_pool: queues, workers, limits, metrics.
#ifndef ASIO_BLOCKING_DETAIL_POOL_CORE_HPP
#define ASIO_BLOCKING_DETAIL_POOL_CORE_HPP

#include <asio_blocking/detail/latency_histogram.hpp>
#include <asio_blocking/detail/operation.hpp>
#include <asio_blocking/lane_metrics.hpp>
#include <asio_blocking/metrics.hpp>
#include <asio_blocking/pool_options.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace asio_blocking::detail {

/// Test seam: while positive, each thread start fails with EAGAIN and decrements it.
extern std::atomic<int> inject_thread_start_failures;

/// A lane's state inside the core; owned by the core so operations never outlive it.
class lane_core {
public:
    lane_core(std::string name, std::size_t limit)
        : name_(std::move(name))
        , limit_(limit)
    {
    }

private:
    friend class pool_core;
    std::string name_;
    std::size_t limit_;
    std::size_t admitted_ = 0; // in the pool's queue or running
    std::size_t running_ = 0;
    std::size_t peak_running_ = 0;
    std::uint64_t completed_ = 0;
    op_list waiting_;
};

/// The pool engine. Shared between the `blocking_pool` and its threads, so that threads left
/// behind by a timed-out `join_for` can finish safely after the pool object is gone.
/**
 * Invariants (all guarded by `mutex_`):
 * - never more than `max_threads_` workers alive or starting;
 * - an idle worker exists only while the queue is empty (submission hands work to the most
 *   recently idle worker directly, so a worker timing out cannot strand a job);
 * - no user code (fn, handlers, hooks, destructors of user objects) runs under `mutex_`.
 */
class pool_core : public std::enable_shared_from_this<pool_core> {
public:
    enum class admission { accepted, refused_stopped, refused_full };
    enum class cancel_outcome { too_late, removed, abandoned };

    /// Validates `options` and starts `min_threads` threads.
    static std::shared_ptr<pool_core> create(pool_options options);

    pool_core(const pool_core&) = delete;
    pool_core& operator=(const pool_core&) = delete;
    ~pool_core();

    /// Takes `op` (its priority, lane, deadline and can_wait_for_room_ already set) unless
    /// refused. A refused op is untouched and still owned by the caller. A plain op (one that
    /// cannot wait for room) blocks here while the queue is full, except on a pool thread.
    admission submit(operation* op);

    /// Takes `op` back if it has not started (`removed`: the caller must abort it). If it is
    /// running and `abandon_running`, marks it abandoned and copies its stop source to `stop`.
    cancel_outcome cancel(operation* op, bool abandon_running, std::stop_source& stop);

    void stop() noexcept;
    void join();
    bool join_for(std::chrono::steady_clock::duration timeout);
    /// What the destructor of blocking_pool does: stop, then join unless that cannot finish
    /// (called on a pool thread, or after join_for gave up); then threads are detached.
    void shutdown() noexcept;

    void set_limits(std::size_t min_threads, std::size_t max_threads);
    pool_metrics metrics() const;

    lane_core* add_lane(std::string name, std::size_t limit);
    void set_lane_limit(lane_core* lane, std::size_t limit);
    lane_metrics metrics(const lane_core* lane) const;

    bool running_in_this_thread() const noexcept;

    /// True on a thread of this pool while the pool may have no other thread: anything the
    /// caller submits here starts only after its own call returns, so waiting for it deadlocks.
    bool caller_is_sole_thread() const;
    std::size_t thread_count() const noexcept { return threads_observed_.load(std::memory_order_relaxed); }

    /// Tracked executors count as outstanding work, and keep the core alive: a call delivering
    /// elsewhere may still hold one after the pool object and its threads are gone.
    void work_started() noexcept
    {
        lifetime_.fetch_add(1, std::memory_order_relaxed);
        outstanding_work_.fetch_add(1, std::memory_order_relaxed);
    }
    void work_finished() noexcept;

private:
    struct worker;
    enum class pool_state : unsigned char { running, draining, stopped, joined };
    using clock = std::chrono::steady_clock;

    explicit pool_core(pool_options options);
    /// Drops one unit of `lifetime_`; the last one deletes the core.
    void release_lifetime() noexcept;

    // Submission and queues.
    bool accepting_locked() const noexcept;
    /// If `wake_later` is given (submit() does), a worker handed the op is returned there for
    /// the caller to notify after unlocking (so it does not wake only to block on the mutex), and
    /// the caller plans growth itself; otherwise the worker is notified here and a queued op has
    /// the monitor grow the pool if it should.
    void admit_locked(operation* op, worker** wake_later = nullptr, clock::time_point now = {});
    /// `now` may be left default; it is read only when needed.
    enum class growth_check : bool { here, by_caller };
    void enqueue_locked(operation* op, clock::time_point now = {}, growth_check growth = growth_check::here);
    void hand_off_locked(operation* op, worker** wake_later);
    operation* take_next_locked(clock::time_point now);
    void start_locked(operation* op, clock::time_point now, bool record_wait = true);
    void finish_locked(operation* op, operation::outcome outcome, clock::duration run_time);
    void leave_waiting_locked(operation* op);
    void release_lane_slot_locked(lane_core* lane);
    void room_freed_locked();
    void take_all_waiting_locked(op_list& out);

    // Threads.
    bool should_start_thread_locked(clock::time_point now) const noexcept;
    /// should_start_thread_locked(), and if not now, schedules the monitor to check again when
    /// growth may become due. The caller starts the thread (outside the lock) if true.
    bool plan_growth_locked(clock::time_point now);
    /// When a backlog that did not grow the pool is worth checking again.
    clock::duration growth_recheck_locked(clock::time_point now) const noexcept;
    void start_threads(std::size_t count) noexcept;
    static void* thread_main(void* arg);
    void worker_loop(worker& self);
    bool worker_should_exit_locked(const worker& self) const noexcept;
    void retire_locked(worker& self);
    void wake_idle_workers_locked() noexcept;
    void join_threads(std::unique_lock<std::mutex>& lk);
    void run_hook(const std::function<void()>& hook, const char* which) noexcept;

    // Deadlines and stall detection.
    void monitor_needed_locked(clock::time_point wake_at);
    void monitor_loop();
    bool drained_locked() const noexcept;

    pool_options options_;
    mutable std::mutex mutex_;
    pool_state state_ = pool_state::running;
    bool detach_threads_ = false;
    std::size_t min_threads_;
    std::size_t max_threads_;
    // Threads the OS lets this process start (RLIMIT_NPROC, cgroup pids), read at creation.
    std::size_t os_thread_cap_;
    int worker_base_nice_; // the creator's nice value: os_scheduling::low is relative to it
    std::size_t effective_max_threads_locked() const noexcept { return std::min(max_threads_, os_thread_cap_); }

    std::array<op_list, 3> queues_;         // indexed by priority
    std::array<unsigned, 3> passed_over_{}; // ageing counters
    std::size_t queued_ = 0;
    op_list admission_;
    std::size_t room_waiters_ = 0;
    std::condition_variable room_cv_;
    op_list running_; // in start order: front() is the longest running
    std::list<lane_core> lanes_;
    std::set<std::pair<clock::time_point, operation*>> deadlines_;

    std::list<worker> workers_;
    // Records of retired workers, kept for reuse and never freed while the core lives, so a late
    // notify_one() on a worker's condition variable is at worst a spurious wake-up.
    std::list<worker> spare_workers_;
    std::vector<worker*> idle_; // a stack: back() is the most recently idle
    std::vector<bool> index_used_;
    std::vector<pthread_t> exited_; // threads that left and still need joining
    std::size_t threads_ = 0;
    std::size_t starting_ = 0;
    std::size_t exits_pending_ = 0; // idle workers told to leave by set_limits, not yet gone
    std::size_t busy_ = 0;
    std::size_t delivering_ = 0; // finished, result being handed back
    std::atomic<std::size_t> threads_observed_{0};
    std::atomic<std::size_t> outstanding_work_{0};
    // 1 for all shared owners (the pool and its threads) together, plus outstanding work.
    std::atomic<std::size_t> lifetime_{1};
    std::condition_variable drained_cv_;
    std::size_t drain_waiters_ = 0;
    std::condition_variable threads_gone_cv_;
    std::uint64_t avg_run_ns_;  // moving average: are recent calls blocking or tiny?
    bool have_avg_run_ = false; // has any call finished yet?
    clock::time_point last_start_failure_{};

    std::thread monitor_;
    std::condition_variable monitor_cv_;
    clock::time_point monitor_wake_at_ = clock::time_point::max();
    bool monitor_stop_ = false;

    // Metrics.
    std::uint64_t submitted_ = 0, completed_ = 0, failed_ = 0, cancelled_ = 0, abandoned_ = 0, rejected_ = 0,
                  expired_ = 0, threads_started_ = 0, threads_retired_ = 0, thread_start_failures_ = 0,
                  hook_failures_ = 0;
    std::size_t peak_threads_ = 0, peak_queued_ = 0;
    latency_histogram queue_wait_;
    latency_histogram run_time_;
};

} // namespace asio_blocking::detail

#endif
