// The engine's coordinator: the pool's state machine and its submit, cancel, stop and join
// paths; the only caller of the components (queue, lane gate, deadlines, growth, workers, monitor).
#ifndef ASIO_BLOCKING_SRC_ENGINE_COORDINATOR_HPP
#define ASIO_BLOCKING_SRC_ENGINE_COORDINATOR_HPP

#include "counters.hpp"
#include "courier.hpp"
#include "deadline_set.hpp"
#include "growth_policy.hpp"
#include "idle_spin.hpp"
#include "lane_gate.hpp"
#include "monitor.hpp"
#include "priority_queue.hpp"
#include "submission_inbox.hpp"
#include "worker_set.hpp"

#include "../thread_limit.hpp"

#include <asio_blocking/detail/engine.hpp>
#include <asio_blocking/lane_metrics.hpp>
#include <asio_blocking/metrics.hpp>
#include <asio_blocking/pool_options.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace asio_blocking::detail {

/**
 * Invariants (guarded by `mutex_`):
 * - never more than `max_threads_` workers alive or starting, not counting workers told to
 *   leave;
 * - a parked worker exists only while the queue is empty: submission hands work to the most
 *   recently parked worker directly, so a worker timing out cannot strand a call;
 * - no queued call with no worker alive or starting (a failed start with none left fails the
 *   waiting calls);
 * - no user code (fn, handlers, hooks, destructors of user objects) runs under `mutex_`.
 *
 * Lifetime: one count (`refs_`) for the pool object, each thread (workers, monitor), each unit
 * of tracked work and each notify made after unlocking; the last release deletes the engine.
 */
class coordinator final : public engine {
public:
    using clock = std::chrono::steady_clock;
    using steady_time = clock::time_point;

    /// Validates `options` and starts `min_threads` threads. Holds the caller's reference.
    static coordinator* create(pool_options options);
    static coordinator& of(engine& e) noexcept { return static_cast<coordinator&>(e); }
    static const coordinator& of(const engine& e) noexcept { return static_cast<const coordinator&>(e); }

    void release() noexcept;

    admission submit(operation* op, const call_settings& settings);
    cancel_outcome cancel(operation* op, if_running running, std::stop_source& stop);

    void stop() noexcept;
    void join();
    bool join_for(clock::duration timeout);
    /// What the destructor of blocking_pool does: stop, then join unless that cannot finish
    /// (called on a pool thread, or after join_for gave up); then threads finish on their own.
    void shutdown() noexcept;

    void set_limits(std::size_t min_threads, std::size_t max_threads);
    pool_metrics metrics() const;
    /// As metrics(), also copying the full latency histograms (taken under the same lock).
    pool_metrics metrics(latency_histogram& queue_wait, latency_histogram& run_time) const;

    /// An observer (the Prometheus collector) holds the engine, not the pool: it may read
    /// metrics until `pool_destroyed()`, then lets go with `release()`.
    void retain() noexcept { add_ref(); }
    /// Set by the pool's destructor before it lets go of the engine.
    void mark_pool_destroyed() noexcept { pool_destroyed_.store(true, std::memory_order_release); }
    bool pool_destroyed() const noexcept { return pool_destroyed_.load(std::memory_order_acquire); }

    lane_state* add_lane(std::string name, std::size_t limit);
    void set_lane_limit(lane_state* lane, std::size_t limit);
    lane_metrics metrics(const lane_state* lane) const;

    bool running_in_this_thread() const noexcept;
    bool caller_is_sole_thread() const;
    std::size_t thread_count() const noexcept { return threads_observed_.load(std::memory_order_relaxed); }
    void work_started() noexcept;
    void work_finished() noexcept;
    bool take_batch_post(caller_registry& registry) const noexcept;

private:
    enum class pool_state : unsigned char { running, draining, stopped, joined };
    /// How an admitted call is placed when a parked worker takes it.
    enum class wake_mode { now, by_caller };

    explicit coordinator(pool_options options);
    ~coordinator();
    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }

    // Submission and waiting places.
    bool accepting_locked(const operation* op) const noexcept;
    bool queue_full_locked() const noexcept;
    /// Places an admitted call: to a parked worker, the admission FIFO or the queue. With
    /// `wake_mode::by_caller` the worker handed the call is returned for the caller to notify.
    worker* place_admitted_locked(operation* op, wake_mode wake);
    /// Gives `op` to `w`, just unparked; the caller notifies it.
    void hand_off_locked(worker* w, operation* op) noexcept;
    void leave_waiting_locked(operation* op) noexcept;
    // The inbox (plain calls submitted without the lock while calls are known to be tiny).
    /// A submitter that pushed while a worker was parked, or as the fast path closed: collects.
    void kick_inbox() noexcept;
    void collect_inbox_locked() noexcept;
    /// Collects the inbox and refuses further pushes (join, stop).
    void close_inbox_locked() noexcept;
    /// Queues collected calls, handing them to parked workers first. With `wake_by_caller`, the
    /// first worker handed a call is returned there for the caller to notify after unlocking.
    void enqueue_collected_locked(op_list& ops, std::size_t count, worker** wake_by_caller = nullptr) noexcept;
    /// Opens or closes the lock-free submission path as its conditions change.
    void refresh_fast_submit_locked() noexcept;
    void release_lane_slot_locked(lane_state* lane);
    void room_freed_locked();
    void take_all_waiting_locked(op_list& out) noexcept;
    bool drained_locked() const noexcept;
    void notify_if_drained_locked() noexcept;

    // Workers.
    static void* thread_main(void* arg);
    void worker_loop(worker* self);
    operation* take_next_locked() noexcept;
    void begin_call_locked(worker* self, operation* op, steady_time now) noexcept;
    /// `ran`: the call's run time, if it was timed (see call_timer).
    void finish_call_locked(worker* self, operation* op, operation::outcome outcome,
                            std::optional<clock::duration> ran) noexcept;
    bool must_leave_now_locked(const worker* self) const noexcept;
    /// Posts the batches `held` (this worker's) has held for `limit` deliveries (0: all).
    static void post_held_batches(held_batches& held, std::size_t limit) noexcept;
    void run_hook(const std::function<void()>& hook, const char* which) noexcept;

    // Growth.
    growth_snapshot growth_snapshot_locked(steady_time now, growth_asker asker) const noexcept;
    /// Threads to start for the backlog (reserved as starting), asking `asker`'s question;
    /// schedules the monitor to look again if not now. Cheap when the answer is known.
    std::size_t plan_growth_locked(growth_asker asker, steady_time now = {});
    bool backlog_waits_locked() const noexcept;
    /// Counts `count` threads as starting, with a record and an engine reference each.
    void reserve_threads_locked(std::size_t count);
    /// Starts `count` threads reserved by reserve_threads_locked (outside the lock).
    void start_threads(std::size_t count) noexcept;
    void thread_start_failed(worker* w, int error) noexcept;

    // CPU figures for growth.
    /// Samples the CPU use of the longest-running calls (unlocking `lk` to read the kernel's
    /// accounting), at most once per half cpu_sample_period; updates the figures below.
    void sample_cpu_locked(std::unique_lock<std::mutex>& lk, steady_time now);
    /// The figures, if a sample stands for the running calls at `now`.
    bool cpu_figures_fresh_locked(steady_time now) const noexcept;

    // Courier.
    /// On a caller's thread: starts the courier once a worker has been lowered.
    void start_courier_locked() noexcept;

    // Monitor.
    void schedule_monitor_locked(steady_time at);
    steady_time monitor_tick(std::unique_lock<std::mutex>& lk, steady_time now);
    /// Posts the batches held by workers whose call started `wait_behind_call` ago or more
    /// (see held_batches); returns when to look again.
    steady_time post_batches_held_behind_long_calls(std::unique_lock<std::mutex>& lk, steady_time now) noexcept;
    void join_threads(std::unique_lock<std::mutex>& lk);

    pool_options options_;
    mutable std::mutex mutex_;
    pool_state state_ = pool_state::running;
    bool detach_threads_ = false; // join_for gave up: shutdown does not wait for threads
    std::size_t min_threads_;
    std::size_t max_threads_;
    int worker_base_nice_;  // the creator's nice value: os_scheduling::low is relative to it
    thread_cap thread_cap_; // max_threads_ as far as the OS allows
    double cpu_limit_;      // options_.cpu_limit, or the CPUs this process may use
    idle_spin spin_;        // by the whole CPUs the process may use, at most cpu_limit_

    priority_queue queue_;
    submission_inbox inbox_;
    std::atomic<bool> fast_submit_{false}; // see refresh_fast_submit_locked
    op_list admission_;                    // async calls waiting for room in a full queue, FIFO
    std::size_t room_waiters_ = 0;
    std::condition_variable room_cv_;
    lane_gate lanes_;
    deadline_set deadlines_;
    worker_set workers_;
    monitor monitor_;
    monitor::tick_fn tick_;
    // The monitor's looks at held batches, counted under the lock (see held_batches::hold).
    std::atomic<unsigned> monitor_looks_{0};
    // Thread-safe: lowered workers hand it batches without the lock.
    mutable courier courier_;
    bool courier_wanted_ = false;                        // a worker has run in a lowered class
    bool courier_started_ = false;                       // tried once, from a caller's thread
    bool joining_helpers_ = false;                       // a join() is joining the monitor and courier
    steady_time growth_recheck_at_ = steady_time::max(); // a growth look is scheduled then

    std::size_t handed_off_ = 0; // given to a parked worker that has not woken yet
    std::size_t delivering_ = 0; // finished, result being handed back
    std::size_t departing_ = 0;  // retired workers still running their exit hook
    std::size_t aborting_ = 0;   // stop() or a timed-out join aborting waiting calls
    std::size_t drain_waiters_ = 0;
    std::condition_variable drained_cv_;
    std::condition_variable threads_gone_cv_;

    // The one call whose queue wait is being measured (see engine_counters::queue_wait_sampling).
    const operation* sampled_op_ = nullptr;
    steady_time sampled_since_{};
    unsigned slow_share_ = 0;      // see growth_snapshot::slow_share
    bool cold_sleep_seen_ = false; // the monitor saw the first calls asleep: new workers grow a tree
    // The last CPU sample of the longest-running calls: CPUs wanted per running call (< 0: none
    // yet), and the share of them that computed.
    double cpus_per_call_ = -1;
    double cpu_bound_share_ = 0;
    steady_time cpu_sampled_at_{};   // when it was taken
    steady_time cpu_sample_tried_{}; // the last attempt, successful or not
    steady_time last_start_failure_{};

    engine_counters counters_;

    std::atomic<std::size_t> threads_observed_{0};
    std::atomic<std::size_t> outstanding_work_{0};
    std::atomic<std::size_t> refs_{1};
    std::atomic<bool> pool_destroyed_{false};
};

} // namespace asio_blocking::detail

#endif
