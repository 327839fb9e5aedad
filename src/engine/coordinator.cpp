// The engine's coordinator: the pool's state machine and its submit, cancel, stop and join
// paths; the only caller of the components (queue, lane gate, deadlines, growth, workers, monitor).
#include "coordinator.hpp"

#include "call_timer.hpp"

#include "../cpu_budget.hpp"
#include "../thread_scheduling.hpp"

#include <asio_blocking/detail/caller_registry.hpp>
#include <asio_blocking/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace asio_blocking::detail {

namespace {

thread_local const coordinator* current_engine = nullptr;
// How long a parked worker told to leave lingers, in case the limits are raised again at once.
constexpr std::chrono::milliseconds leave_grace{5};
// A worker at normal priority moves to worker_scheduling's class after a call this long.
constexpr std::chrono::milliseconds lower_after_call{1};
// A lowered worker returns to normal only while the pool's slow_share is below this (of 256).
constexpr unsigned restore_below_slow_share = 16;
// This thread is a worker in a lowered OS scheduling class: its io_context posts go through
// the courier (see courier.hpp).
thread_local bool worker_lowered = false;
// Set while this worker hands back a result whose batch it may hold (see held_batches).
thread_local held_batches* batch_holder = nullptr;
// The engine whose call's completion handler this thread is running (see completion_scope).
thread_local const engine* completing_for = nullptr;
// Set while this thread must never wait for room in a pool: stop() and the monitor delivering.
thread_local bool must_not_block = false;

struct never_block_scope {
    bool previous = std::exchange(must_not_block, true);
    never_block_scope() = default;
    never_block_scope(const never_block_scope&) = delete;
    never_block_scope& operator=(const never_block_scope&) = delete;
    ~never_block_scope() { must_not_block = previous; }
};
// Per submitting thread: which of its calls has its queue wait measured.
thread_local unsigned submissions_on_this_thread = 0;

std::exception_ptr aborted_error()
{
    return std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted));
}

// The engine aborting operations on this thread (see engine::handing_back).
thread_local const engine* aborting_for = nullptr;

void abort_all(const engine& from, op_list& ops, const std::exception_ptr& error) noexcept
{
    const engine* previous = std::exchange(aborting_for, &from);
    while (operation* op = ops.pop_front())
        op->abort(error);
    aborting_for = previous;
}

struct thread_start {
    coordinator* engine;
    worker* self;
};

} // namespace

// ---------------------------------------------------------------------------------------------
// The narrow interface the templates see

engine::admission engine::submit(operation* op, const call_settings& settings)
{
    return coordinator::of(*this).submit(op, settings);
}

engine::cancel_outcome engine::cancel(operation* op, if_running running, std::stop_source& stop)
{
    return coordinator::of(*this).cancel(op, running, stop);
}

bool engine::running_in_this_thread() const noexcept
{
    return coordinator::of(*this).running_in_this_thread();
}

bool engine::caller_is_sole_thread() const
{
    return coordinator::of(*this).caller_is_sole_thread();
}

std::size_t engine::thread_count() const noexcept
{
    return coordinator::of(*this).thread_count();
}

const engine* engine::handing_back() noexcept
{
    // Workers complete only their own engine's calls; aborts come through abort_all.
    return aborting_for ? aborting_for : current_engine;
}

bool engine::take_batch_post(caller_registry& registry) const noexcept
{
    return coordinator::of(*this).take_batch_post(registry);
}

void engine::work_started() noexcept
{
    coordinator::of(*this).work_started();
}

void engine::work_finished() noexcept
{
    coordinator::of(*this).work_finished();
}

completion_scope::completion_scope(const engine* e) noexcept
    : previous_(std::exchange(completing_for, e))
{
}

completion_scope::~completion_scope()
{
    completing_for = previous_;
}

// ---------------------------------------------------------------------------------------------
// Construction, lifetime

coordinator::coordinator(pool_options options)
    : options_(std::move(options))
    , min_threads_(options_.min_threads)
    , max_threads_(options_.max_threads)
    , worker_base_nice_(this_thread_nice())
    , thread_cap_(os_thread_headroom())
    , cpu_limit_(static_cast<double>(options_.cpu_limit != 0 ? options_.cpu_limit : cpu_budget()))
    , spin_(std::min(cpu_limit_, static_cast<double>(cpu_budget(quota_rounding::down))))
    , tick_([this](std::unique_lock<std::mutex>& lk, steady_time now) {
        const steady_time next_hold_look = post_batches_held_behind_long_calls(lk, now);
        return std::min(monitor_tick(lk, now), next_hold_look);
    })
{
    // Submitters and workers hold the lock briefly: spinning a little before sleeping in the
    // kernel saves two futex calls each time they meet.
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(mutex_.native_handle(), &attr);
    pthread_mutexattr_destroy(&attr);
}

coordinator* coordinator::create(pool_options options)
{
    validate(options);
    auto* c = new coordinator(std::move(options));
    if (const std::size_t n = c->min_threads_) {
        {
            std::lock_guard lk(c->mutex_);
            c->reserve_threads_locked(n);
        }
        c->start_threads(n);
    }
    return c;
}

coordinator::~coordinator()
{
    // Reached once the pool, every thread and all tracked work have let go; a destructor must
    // not block. The monitor may be the thread releasing the last reference.
    std::thread m = monitor_.stop_locked();
    if (m.joinable())
        m.detach();
    std::thread c = courier_.stop();
    if (c.joinable())
        c.detach();
}

void coordinator::release() noexcept
{
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
        delete this;
}

void coordinator::work_started() noexcept
{
    add_ref();
    outstanding_work_.fetch_add(1, std::memory_order_relaxed);
}

void coordinator::work_finished() noexcept
{
    if (outstanding_work_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lk(mutex_);
        notify_if_drained_locked();
    }
    release();
}

bool coordinator::running_in_this_thread() const noexcept
{
    return current_engine == this;
}

bool coordinator::caller_is_sole_thread() const
{
    if (!running_in_this_thread())
        return false;
    std::lock_guard lk(mutex_);
    return max_threads_ == 1;
}

// ---------------------------------------------------------------------------------------------
// Submission

bool coordinator::accepting_locked(const operation* op) const noexcept
{
    switch (state_) {
    case pool_state::running:
        return true;
    case pool_state::draining:
        // After join() begins only continuations of accepted work get in: completions, calls
        // made on a pool thread or inside a completion handler of this pool's calls, and
        // functions submitted through a work-tracking executor (the work they continue was
        // already counted). A fresh outside call is refused, so steady outside load cannot keep
        // join() waiting.
        return op->kind_ == op_kind::completion || op->kind_ == op_kind::tracked || running_in_this_thread() ||
               completing_for == this;
    case pool_state::stopped:
        // Completions are run while threads remain to run them (stop() waits for its own);
        // threads told to leave do not count.
        return op->kind_ == op_kind::completion && workers_.threads() - workers_.leaving() + workers_.starting() > 0;
    default:
        return false;
    }
}

bool coordinator::queue_full_locked() const noexcept
{
    return options_.queue_capacity != 0 && queue_.size() >= options_.queue_capacity && workers_.idle() == 0;
}

coordinator::admission coordinator::submit(operation* op, const call_settings& settings)
{
    // Clock reads only where a call needs them: a queue timeout, or the sampled queue wait.
    const bool sampled = ++submissions_on_this_thread % engine_counters::queue_wait_sampling == 0;
    const bool timed =
        settings.queue_timeout > clock::duration::zero() && settings.queue_timeout != clock::duration::max();
    op->lane_ = lane_gate::index_of(settings.lane);
    if (!sampled && !timed && !op->lane_ && op->priority_ == priority::normal && op->kind_ != op_kind::completion &&
        fast_submit_.load(std::memory_order_seq_cst)) {
        // The plain call while calls are known to be tiny: into the inbox, no lock. Once pushed,
        // the call may run, complete and have its pool destroyed: hold the engine meanwhile.
        add_ref();
        op->place_ = op_place::inbox;
        if (inbox_.push(op)) {
            // The workers check the inbox after parking, and whoever closes the fast path after
            // closing it: one side or the other sees the call (see submission_inbox).
            if (workers_.idle_hint() > 0 || !fast_submit_.load(std::memory_order_seq_cst))
                kick_inbox();
            release();
            return admission::accepted;
        }
        release(); // closed: stop() or join() began; the locked path below decides
    }
    const steady_time now = sampled || timed ? clock::now() : steady_time{};
    const steady_time deadline = timed ? saturating_after(now, settings.queue_timeout) : steady_time::max();

    std::unique_lock lk(mutex_);
    collect_inbox_locked(); // earlier calls go first
    // Not from a thread in a lowered class either (another pool's thread started by a lowered
    // worker, a monitor that could not restore itself): the courier would inherit it.
    if (courier_wanted_ && !courier_started_ && !running_in_this_thread() && !worker_lowered &&
        !this_thread_runs_lowered(worker_base_nice_))
        start_courier_locked();
    ++counters_.totals.submitted;
    if (!accepting_locked(op)) {
        ++counters_.totals.rejected;
        return admission::refused_stopped;
    }
    worker* wake = nullptr;
    if (op->lane_ && lanes_.admit(op) == lane_gate::verdict::hold) {
        // Waits in its lane, occupying no queue slot.
    } else {
        // A pool thread never waits on its own pool: that could deadlock it. A thread that must
        // stay responsive (the monitor delivering expired calls, stop() aborting them) never waits
        // on any pool. Both are admitted over capacity instead.
        const bool may_wait = !running_in_this_thread() && !must_not_block;
        if (op->kind_ != op_kind::completion && queue_full_locked() && (may_wait || op->kind_ == op_kind::async_call)) {
            if (options_.on_overflow == overflow_policy::reject) {
                if (op->lane_)
                    release_lane_slot_locked(&lanes_.lane_of(op));
                ++counters_.totals.rejected;
                return admission::refused_full;
            }
            if (op->kind_ != op_kind::async_call) {
                ++room_waiters_;
                room_cv_.wait(lk, [&] { return state_ != pool_state::running || !queue_full_locked(); });
                --room_waiters_;
                if (!accepting_locked(op)) {
                    // Pass on the wake-up this waiter may have taken: another may be let in.
                    if (room_waiters_ > 0 && !queue_full_locked())
                        room_cv_.notify_one();
                    if (op->lane_)
                        release_lane_slot_locked(&lanes_.lane_of(op));
                    ++counters_.totals.rejected;
                    return admission::refused_stopped;
                }
            }
        }
        wake = place_admitted_locked(op, wake_mode::by_caller);
        // Room can remain after this call (an idle worker took it, or another is idle): the
        // next blocked poster must not wait for a dequeue that may never come.
        if (room_waiters_ > 0 && !queue_full_locked())
            room_cv_.notify_one();
    }
    if (deadline != steady_time::max() && op->place_ != op_place::running) {
        deadlines_.add(op, deadline);
        schedule_monitor_locked(deadline);
    }
    if (sampled && sampled_op_ == nullptr) {
        sampled_op_ = op;
        sampled_since_ = now;
    }
    const std::size_t grow = backlog_waits_locked() ? plan_growth_locked(growth_asker::submitter, now) : 0;
    refresh_fast_submit_locked();
    if (wake)
        add_ref(); // the notify below must not outlive the engine (a call may delete its pool)
    lk.unlock();
    if (wake) {
        wake->cv.notify_one();
        release();
    }
    if (grow)
        start_threads(grow);
    return admission::accepted;
}

void coordinator::hand_off_locked(worker* w, operation* op) noexcept
{
    w->handoff = op;
    w->poked.store(true, std::memory_order_release);
    op->place_ = op_place::running;
    ++handed_off_; // busy from now on, for join()'s sake
}

worker* coordinator::place_admitted_locked(operation* op, wake_mode wake)
{
    if (worker* w = workers_.unpark_latest()) {
        // LIFO: the most recently parked worker is warm, and the others get to time out.
        hand_off_locked(w, op);
        if (wake == wake_mode::by_caller)
            return w;
        w->cv.notify_one(); // under the lock: no one can delete the engine meanwhile
        return nullptr;
    }
    if (op->kind_ == op_kind::async_call && queue_full_locked()) {
        admission_.push_back(op);
        op->place_ = op_place::admission;
        return nullptr;
    }
    queue_.push(op);
    op->place_ = op_place::queued;
    counters_.queued(queue_.size());
    // A call queued other than by submit() (a lane or the admission FIFO letting it through)
    // still makes the pool look at growing: the monitor does it, no thread starts under the lock.
    if (wake == wake_mode::now && backlog_waits_locked())
        schedule_monitor_locked(clock::now());
    return nullptr;
}

void coordinator::kick_inbox() noexcept
{
    std::unique_lock lk(mutex_);
    op_list ops;
    worker* wake = nullptr;
    enqueue_collected_locked(ops, inbox_.take_all(ops), &wake);
    std::size_t grow = 0;
    try {
        grow = backlog_waits_locked() ? plan_growth_locked(growth_asker::submitter) : 0;
    } catch (...) {
        // Out of memory reserving a thread: the calls are queued (accepted) all the same, and
        // the next submission or the monitor plans growth again. The hand-off below still wakes.
    }
    refresh_fast_submit_locked();
    if (wake)
        add_ref(); // as in submit(): the notify must not outlive the engine
    lk.unlock();
    if (wake) {
        wake->cv.notify_one(); // outside the lock, so the worker does not wake into a held lock
        release();
    }
    if (grow)
        start_threads(grow);
}

void coordinator::collect_inbox_locked() noexcept
{
    op_list ops;
    enqueue_collected_locked(ops, inbox_.take_all(ops));
}

void coordinator::enqueue_collected_locked(op_list& ops, std::size_t count, worker** wake_by_caller) noexcept
{
    if (count == 0)
        return;
    counters_.totals.submitted += count;
    while (operation* op = ops.pop_front()) {
        op->place_ = op_place::queued;
        queue_.push(op);
    }
    counters_.queued(queue_.size());
    // A parked worker exists only while the queue is empty.
    while (!queue_.empty()) {
        worker* w = workers_.unpark_latest();
        if (!w)
            break;
        hand_off_locked(w, queue_.pop());
        if (wake_by_caller && !*wake_by_caller)
            *wake_by_caller = w;
        else
            w->cv.notify_one(); // under the lock: no one can delete the engine meanwhile
    }
}

void coordinator::close_inbox_locked() noexcept
{
    // Calls pushed before this were accepted while the pool ran; later ones take the locked path.
    fast_submit_.store(false, std::memory_order_seq_cst);
    op_list ops;
    enqueue_collected_locked(ops, inbox_.close(ops));
}

void coordinator::refresh_fast_submit_locked() noexcept
{
    // Open while calls are known to be tiny and either a look at growth is scheduled (a locked
    // submission would not plan growth either, see plan_growth_locked; the monitor's look
    // collects the inbox before deciding) or the pool cannot grow at all.
    const std::size_t staying = workers_.threads() - workers_.leaving();
    const bool open = state_ == pool_state::running && options_.queue_capacity == 0 &&
                      counters_.totals.completed + counters_.totals.failed > 0 &&
                      slow_share_ < growth_policy::slow_majority && staying >= std::max<std::size_t>(min_threads_, 1) &&
                      (growth_recheck_at_ != steady_time::max() || staying + workers_.starting() >= max_threads_);
    if (open == fast_submit_.load(std::memory_order_relaxed))
        return;
    fast_submit_.store(open, std::memory_order_seq_cst);
    if (!open)
        collect_inbox_locked(); // calls pushed by submitters that saw it open
}

// Takes a waiting (not yet started) call out of wherever it waits.
void coordinator::leave_waiting_locked(operation* op) noexcept
{
    deadlines_.remove(op);
    if (sampled_op_ == op)
        sampled_op_ = nullptr;
    switch (op->place_) {
    case op_place::lane:
        lanes_.remove_held(op);
        break;
    case op_place::admission:
        admission_.erase(op);
        if (op->lane_)
            release_lane_slot_locked(&lanes_.lane_of(op));
        break;
    case op_place::queued:
        queue_.remove(op);
        room_freed_locked();
        if (op->lane_)
            release_lane_slot_locked(&lanes_.lane_of(op));
        break;
    default:
        break;
    }
    op->place_ = op_place::none;
}

void coordinator::release_lane_slot_locked(lane_state* lane)
{
    for (operation* next = lanes_.release(lane); next; next = lanes_.admit_next(lane))
        place_admitted_locked(next, wake_mode::now);
}

void coordinator::room_freed_locked()
{
    if (!admission_.empty()) {
        operation* op = admission_.pop_front(); // admission waiters go first, in order
        queue_.push(op);
        op->place_ = op_place::queued;
        counters_.queued(queue_.size());
    } else if (room_waiters_ > 0) {
        room_cv_.notify_one();
    }
}

void coordinator::take_all_waiting_locked(op_list& out) noexcept
{
    fast_submit_.store(false, std::memory_order_seq_cst);
    queue_.take_all(out);
    // Stopped: closed for good. A thread start failing while running only empties it (a later
    // push sees the path closed and kicks, which tries a thread again): closing it there would
    // leave every later call on the locked path for the pool's lifetime.
    counters_.totals.submitted += state_ >= pool_state::stopped ? inbox_.close(out) : inbox_.take_all(out);
    out.splice_back(admission_);
    lanes_.take_all_held(out);
    for (operation* op = out.front(); op; op = op->next_)
        op->place_ = op_place::none;
    deadlines_.clear();
    sampled_op_ = nullptr;
}

bool coordinator::drained_locked() const noexcept
{
    return queue_.empty() && inbox_.empty() && admission_.empty() && workers_.busy() == 0 && handed_off_ == 0 &&
           delivering_ == 0 && aborting_ == 0 && outstanding_work_.load(std::memory_order_relaxed) == 0 &&
           lanes_.held() == 0;
}

void coordinator::notify_if_drained_locked() noexcept
{
    if (drain_waiters_ > 0 && drained_locked())
        drained_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Cancellation, stop, join

coordinator::cancel_outcome coordinator::cancel(operation* op, if_running running, std::stop_source& stop)
{
    std::lock_guard lk(mutex_);
    collect_inbox_locked();
    switch (op->place_) {
    case op_place::lane:
    case op_place::admission:
    case op_place::queued:
        leave_waiting_locked(op);
        ++counters_.totals.cancelled;
        notify_if_drained_locked();
        return cancel_outcome::removed;
    case op_place::running:
        if (running == if_running::keep)
            return cancel_outcome::too_late;
        op->place_ = op_place::abandoned;
        ++counters_.totals.cancelled;
        ++counters_.totals.abandoned;
        stop = op->stop_source();
        return cancel_outcome::abandoned;
    default:
        return cancel_outcome::too_late;
    }
}

void coordinator::stop() noexcept
{
    op_list aborted;
    std::vector<std::stop_source> stops;
    {
        std::lock_guard lk(mutex_);
        if (state_ < pool_state::stopped)
            state_ = pool_state::stopped;
        take_all_waiting_locked(aborted);
        // Completions of handlers bound to this pool are results already made: they run while
        // the pool has threads (see accepting_locked), so they go back in the queue.
        if (workers_.threads() - workers_.leaving() + workers_.starting() > 0)
            for (operation* op = aborted.front(); op;) {
                operation* next = op->next_;
                if (op->kind_ == op_kind::completion) {
                    aborted.erase(op);
                    queue_.push(op);
                    op->place_ = op_place::queued;
                }
                op = next;
            }
        counters_.totals.cancelled += aborted.size();
        try {
            workers_.for_each_running([&](operation* op) {
                if (std::stop_source s = op->stop_source(); s.stop_possible())
                    stops.push_back(std::move(s));
            });
        } catch (...) {
            // Out of memory: running calls are simply not asked to stop early.
        }
        // Workers stay until the completions these aborts post to the pool itself have run.
        ++aborting_;
        workers_.wake_all_parked();
        room_cv_.notify_all();
        drained_cv_.notify_all();
    }
    {
        const never_block_scope never_block; // stop() does not block, even delivering
        abort_all(*this, aborted, aborted_error());
    }
    for (auto& s : stops)
        s.request_stop();
    std::lock_guard lk(mutex_);
    --aborting_;
    workers_.wake_all_parked();
    notify_if_drained_locked();
    threads_gone_cv_.notify_all();
}

void coordinator::join()
{
    if (running_in_this_thread())
        throw std::logic_error("asio_blocking: join() called from one of the pool's own threads "
                               "would wait for itself");
    std::unique_lock lk(mutex_);
    if (state_ == pool_state::running) {
        state_ = pool_state::draining;
        close_inbox_locked();
        room_cv_.notify_all(); // blocked posters re-check whether they are still accepted
    }
    ++drain_waiters_;
    drained_cv_.wait(lk, [&] { return state_ >= pool_state::stopped || drained_locked(); });
    --drain_waiters_;
    join_threads(lk);
}

bool coordinator::join_for(clock::duration timeout)
{
    if (running_in_this_thread())
        throw std::logic_error("asio_blocking: join_for() called from one of the pool's own threads "
                               "would wait for itself");
    const steady_time deadline = saturating_after(clock::now(), timeout);
    std::unique_lock lk(mutex_);
    if (state_ == pool_state::running) {
        state_ = pool_state::draining;
        close_inbox_locked();
        room_cv_.notify_all();
    }
    ++drain_waiters_;
    auto done = [&] {
        return drained_locked() ||
               (state_ >= pool_state::stopped && workers_.busy() == 0 && handed_off_ == 0 && delivering_ == 0);
    };
    bool drained;
    if (deadline == steady_time::max()) {
        drained_cv_.wait(lk, done);
        drained = true;
    } else {
        drained = drained_cv_.wait_until(lk, deadline, done);
    }
    --drain_waiters_;
    if (drained) {
        join_threads(lk);
        return true;
    }
    // Give up: abort what waits, ask running calls to stop, and leave their threads behind.
    detach_threads_ = true;
    lk.unlock();
    stop();
    return false;
}

void coordinator::shutdown() noexcept
{
    stop();
    std::unique_lock lk(mutex_);
    if (state_ == pool_state::joined)
        return;
    if (!detach_threads_ && !running_in_this_thread()) {
        join_threads(lk);
        return;
    }
    // The threads cannot be waited for (join_for gave up, or we are one of them). They hold a
    // reference to the engine and are detached, so they finish safely on their own.
    detach_threads_ = true;
    state_ = pool_state::joined;
    std::thread m = monitor_.stop_locked();
    // Nor does the monitor post the batches they hold from now on: their calls may never end.
    post_batches_held_behind_long_calls(lk, steady_time::max());
    // Detached workers may still hand it batches until it ends; then they post themselves.
    std::thread c = courier_.stop();
    lk.unlock();
    if (m.joinable()) {
        if (m.get_id() == std::this_thread::get_id())
            m.detach();
        else
            m.join();
    }
    if (c.joinable())
        c.detach(); // it ends once it has posted what it holds; it holds a reference meanwhile
}

// ---------------------------------------------------------------------------------------------
// Courier

bool coordinator::take_batch_post(caller_registry& registry) const noexcept
{
    if (current_engine != this || (!worker_lowered && !batch_holder))
        return false;
    registry.add_ref(); // the courier's or the holder's, until it has posted
    if (worker_lowered ? courier_.hand_over(&registry) : batch_holder->hold(&registry, monitor_looks_))
        return true;
    registry.release();
    return false;
}

void coordinator::post_held_batches(held_batches& held, std::size_t limit) noexcept
{
    while (caller_registry* registry = held.take_due(limit))
        registry->post_handed_batch();
}

void coordinator::start_courier_locked() noexcept
{
    // Started by a caller, so it runs at the caller's priority; a lowered worker could not give
    // its thread a higher one than its own without CAP_SYS_NICE. Tried once: without it, lowered
    // workers post themselves, as every thread did before.
    courier_started_ = true;
    if (state_ >= pool_state::stopped)
        return;
    add_ref(); // the courier thread's
    if (!courier_.start([this] { release(); }))
        release(); // not the last: the caller's is held
}

void coordinator::join_threads(std::unique_lock<std::mutex>& lk)
{
    if (state_ < pool_state::stopped)
        state_ = pool_state::stopped;
    workers_.wake_all_parked();
    room_cv_.notify_all();
    threads_gone_cv_.wait(
        lk, [&] { return workers_.threads() == 0 && workers_.starting() == 0 && departing_ == 0 && aborting_ == 0; });
    if (state_ == pool_state::joined) {
        // Another join() took the monitor and the courier: return once it has joined them too,
        // not while the courier may still hold batches.
        threads_gone_cv_.wait(lk, [&] { return !joining_helpers_; });
        return;
    }
    std::thread m = monitor_.stop_locked();
    // No worker is left to hand it a batch; it posts what it holds before it ends.
    std::thread c = courier_.stop();
    state_ = pool_state::joined;
    joining_helpers_ = true;
    lk.unlock();
    if (m.joinable())
        m.join();
    if (c.joinable())
        c.join();
    lk.lock();
    joining_helpers_ = false;
    threads_gone_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Workers

void coordinator::reserve_threads_locked(std::size_t count)
{
    for (std::size_t i = 0; i < count; ++i) {
        workers_.reserve();
        // Each thread's reference, taken here: once the lock is released, the last other
        // reference may go at any moment (a call may delete its pool), before the thread starts.
        add_ref();
    }
}

void coordinator::start_threads(std::size_t count) noexcept
{
    // `count` records were reserved (counted as starting) under the lock by the caller.
    for (std::size_t i = 0; i < count; ++i) {
        worker* w;
        {
            std::lock_guard lk(mutex_);
            w = workers_.reserved_record();
        }
        int rc = ENOMEM;
        // The thread's reference was taken when it was reserved (reserve_threads_locked).
        if (auto* start = new (std::nothrow) thread_start{this, w}) {
            rc = worker_set::spawn(&coordinator::thread_main, start, options_.stack_size);
            if (rc != 0)
                delete start;
        }
        if (rc != 0) {
            // Give up on the rest of this batch too: retrying at once would fail again.
            if (i + 1 < count) {
                {
                    std::lock_guard lk(mutex_);
                    for (std::size_t rest = i + 1; rest < count; ++rest)
                        workers_.unreserve(workers_.reserved_record());
                }
                // Their references; not the last: the failed thread's is still held.
                refs_.fetch_sub(count - i - 1, std::memory_order_acq_rel);
            }
            thread_start_failed(w, rc);
            return;
        }
    }
}

void coordinator::thread_start_failed(worker* w, int error) noexcept
{
    // The thread did not start. Queued work waits for the workers there are; with none left,
    // nothing would ever run it, so it fails with the start error.
    op_list stranded;
    {
        std::lock_guard lk(mutex_);
        workers_.unreserve(w);
        ++counters_.totals.thread_start_failures;
        last_start_failure_ = clock::now();
        thread_cap_.start_failed(workers_.threads() + workers_.starting(), last_start_failure_);
        // Nobody may ask about the backlog again: have the monitor look once the back-off ends.
        if (backlog_waits_locked()) {
            growth_recheck_at_ = std::min(growth_recheck_at_,
                                          saturating_after(last_start_failure_, growth_policy::start_failure_backoff));
            schedule_monitor_locked(growth_recheck_at_);
        }
        if (workers_.threads() == 0 && workers_.starting() == 0) {
            take_all_waiting_locked(stranded);
            counters_.totals.failed += stranded.size();
            threads_gone_cv_.notify_all();
            notify_if_drained_locked();
        }
    }
    if (!stranded.empty())
        abort_all(*this, stranded,
                  std::make_exception_ptr(std::system_error(error, std::generic_category(),
                                                            "asio_blocking: cannot start a worker thread")));
    release(); // the reference taken for the thread
}

void* coordinator::thread_main(void* arg)
{
    const thread_start start = *static_cast<thread_start*>(arg);
    delete static_cast<thread_start*>(arg);
    start.engine->worker_loop(start.self);
    start.engine->release(); // may delete the engine: its last touch
    return nullptr;
}

void coordinator::run_hook(const std::function<void()>& hook, const char* which) noexcept
{
    if (!hook)
        return;
    try {
        hook();
        return;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "asio_blocking: %s hook threw: %s\n", which, e.what());
    } catch (...) {
        std::fprintf(stderr, "asio_blocking: %s hook threw a non-standard exception\n", which);
    }
    std::lock_guard lk(mutex_);
    ++counters_.totals.hook_failures;
}

operation* coordinator::take_next_locked() noexcept
{
    operation* op = queue_.pop();
    if (op)
        room_freed_locked();
    return op;
}

void coordinator::begin_call_locked(worker* self, operation* op, steady_time now) noexcept
{
    deadlines_.remove(op);
    if (op == sampled_op_) {
        counters_.queue_wait.record(engine_counters::to_ns(now - sampled_since_));
        sampled_op_ = nullptr;
    }
    if (op->place_ != op_place::abandoned) // a handed-off call may be abandoned before its worker woke
        op->place_ = op_place::running;
    workers_.begin_call(self, op, now);
    self->held.call_started(monitor_looks_);
    if (op->lane_)
        lanes_.started(op);
}

void coordinator::finish_call_locked(worker* self, operation* op, operation::outcome outcome,
                                     std::optional<clock::duration> ran) noexcept
{
    workers_.end_call(self);
    ++delivering_;
    const bool abandoned = op->place_ == op_place::abandoned; // already counted when cancelled
    op->place_ = op_place::none;
    if (ran && outcome != operation::outcome::skipped) {
        slow_share_ =
            growth_policy::next_slow_share(slow_share_, counters_.totals.completed + counters_.totals.failed, *ran);
    }
    counters_.finished(outcome, !abandoned, ran);
    if (op->lane_) {
        lanes_.finished(op, outcome != operation::outcome::skipped);
        release_lane_slot_locked(&lanes_.lane_of(op));
    }
}

bool coordinator::must_leave_now_locked(const worker* self) const noexcept
{
    // set_limits shrinking takes effect before a worker takes more work; workers already told
    // to leave no longer count.
    return self->exit_requested || workers_.threads() - workers_.leaving() > max_threads_;
}

void coordinator::worker_loop(worker* self)
{
    current_engine = this;
    std::size_t index;
    bool kept; // one of the first max(min_threads, 1) threads: see below
    const pid_t tid = ::gettid();
    {
        std::lock_guard lk(mutex_);
        kept = workers_.threads() < std::max<std::size_t>(min_threads_, 1);
        self->tid = tid;
        self->cpu_clock = thread_cpu_clock::of(pthread_self());
        self->cpu_seen_at = {};
        index = workers_.started(self);
        threads_observed_.store(workers_.threads(), std::memory_order_relaxed);
        ++counters_.totals.threads_started;
        counters_.threads(workers_.threads());
    }
    {
        const std::string suffix = std::to_string(index);
        std::string name = options_.thread_name.substr(0, 15 - std::min<std::size_t>(15, suffix.size()));
        name += suffix;
        pthread_setname_np(pthread_self(), name.c_str());
    }
    // The pool's first thread (or its min_threads, kept warm for latency) starts at normal
    // priority: while calls are tiny it stays the only one, and each of its calls is awaited by
    // the caller, so a lower class would only starve them behind the application's threads. It
    // moves to worker_scheduling's class after its first call of a millisecond or more, and back
    // once the pool's calls are tiny again. A thread started beyond those is for slow calls, and
    // starts in that class. A refusal leaves the worker in
    // the class it was created with (threads inherit their creator's); nothing else depends on it.
    const bool adapts = options_.worker_scheduling != os_scheduling::normal;
    // worker_lowered (thread-local: the courier hand-over reads it) is this worker's class.
    bool stuck_lowered = false; // could not return to normal
    if (adapts && !kept)
        worker_lowered = apply_to_this_thread(options_.worker_scheduling, worker_base_nice_);
    else if (adapts)
        stuck_lowered = worker_lowered = !restore_this_thread(worker_base_nice_); // its creator's class may be lower
    run_hook(options_.on_thread_start, "on_thread_start");

    std::unique_lock lk(mutex_);
    courier_wanted_ = courier_wanted_ || worker_lowered;
    operation* finished = nullptr;  // ran; its result is handed back outside the lock
    bool delivered = false;         // a result was handed back since the lock was last held
    bool caller_may_return = false; // ... and then no call was waiting, nor any other of its caller
    // The reading that ends a call starts the next; tiny calls are timed one in 16.
    call_timer timer(clock::now(), growth_policy::slow_call);
    steady_time now = timer.last_reading();
    for (;;) {
        if (delivered) {
            delivered = false;
            --delivering_;
            notify_if_drained_locked();
        }
        operation* op = nullptr;
        const bool leave = must_leave_now_locked(self);
        refresh_fast_submit_locked();
        // Inbox calls are normal and newer than every queued normal call: they may wait while
        // only normal calls are queued, not behind a low call, nor unaged behind high ones.
        if (queue_.empty() || queue_.size(priority::normal) != queue_.size())
            collect_inbox_locked();
        if (!leave)
            op = take_next_locked();
        if (!op && finished) {
            // Hand the result back before going idle (or leaving): the handler may submit more.
            // A worker with no call to run holds no batch: they go first.
            lk.unlock();
            post_held_batches(self->held, 0);
            const caller_pending others = std::exchange(finished, nullptr)->complete();
            lk.lock();
            delivered = true;
            caller_may_return = others == caller_pending::none;
            timer.restart(clock::now());
            now = timer.last_reading();
            continue;
        }
        if (!op) {
            if (leave || (state_ >= pool_state::stopped && aborting_ == 0))
                break;
            workers_.park(self);
            // An idle worker is room (see queue_full_locked): a blocked poster may come in.
            if (room_waiters_ > 0)
                room_cv_.notify_one();
            steady_time leave_by{};
            for (;;) {
                // Parked (published by park()), then the inbox is checked: a submitter pushing
                // meanwhile sees this worker parked and kicks (see submission_inbox).
                collect_inbox_locked();
                if (self->exit_requested && state_ < pool_state::stopped) {
                    // Told to leave (it no longer counts): linger briefly, so that limits raised
                    // again at once keep this thread instead of starting a new one.
                    if (leave_by == steady_time{})
                        leave_by = clock::now() + leave_grace;
                    if (self->cv.wait_until(lk, leave_by) == std::cv_status::timeout && self->exit_requested)
                        break;
                    continue;
                }
                // Above min_threads a parked worker retires after idle_timeout; at or below it,
                // it waits without a timeout: an idle pool wakes no one.
                const bool may_retire = workers_.threads() - workers_.leaving() > min_threads_;
                const steady_time until =
                    may_retire ? saturating_after(now, options_.idle_timeout) : steady_time::max();
                if (self->handoff || self->exit_requested || (state_ >= pool_state::stopped && aborting_ == 0))
                    break;
                // Once per idle moment: poll for the caller's next call before sleeping (see
                // idle_spin); then look again under the lock: a notify meanwhile found no one waiting.
                if (std::exchange(caller_may_return, false) && !worker_lowered && spin_.try_begin_locked()) {
                    self->poked.store(false, std::memory_order_relaxed);
                    lk.unlock();
                    idle_spin::poll(self->poked);
                    lk.lock();
                    // Found work only if handed a call: stop() and set_limits poke as well.
                    const bool found = self->handoff != nullptr;
                    spin_.end_locked(found);
                    ++counters_.totals.idle_spins;
                    counters_.totals.idle_spin_hits += found;
                    continue;
                }
                if (until == steady_time::max()) {
                    self->cv.wait(lk);
                } else if (self->cv.wait_until(lk, until) == std::cv_status::timeout && !self->handoff) {
                    // Not while stop() aborts: the completions it posts here need a thread.
                    if (workers_.threads() - workers_.leaving() > min_threads_ && aborting_ == 0)
                        break;
                    now = clock::now();
                }
                if (!self->handoff && state_ >= pool_state::stopped && !queue_.empty())
                    break; // completions arrived after stop(): unpark and run them
            }
            if (!self->handoff) {
                if (self->parked)
                    workers_.unpark(self);
                collect_inbox_locked();
                if (!queue_.empty() && !self->exit_requested && state_ < pool_state::joined)
                    continue; // work to run (completions after stop()), not leaving
                break;        // timed out, asked to leave, or stopped: retire
            }
            op = std::exchange(self->handoff, nullptr);
            --handed_off_;
            timer.restart(clock::now());
            now = timer.last_reading();
        }
        begin_call_locked(self, op, now);
        // A worker may start two (a tree, not a chain); a submission starts one.
        const std::size_t grow = backlog_waits_locked() ? plan_growth_locked(growth_asker::worker, now) : 0;
        // Only when the pool's calls, not just this worker's, are tiny: a worker back at normal
        // priority that then computes would starve lowered workers holding locks the loop needs.
        const bool pool_calls_tiny = slow_share_ < restore_below_slow_share;
        // While calls are tiny, a finished call's batch may wait for a few more deliveries; the
        // monitor posts it if this call turns out long (see held_batches). Without a finished
        // call the worker came from idle, holding nothing: no need to trouble the monitor.
        std::size_t hold_for = finished && !worker_lowered && pool_calls_tiny && timer.calls_are_tiny() &&
                                       state_ == pool_state::running // the monitor is not asked after stop()
                                   ? held_batches::deliveries_for(timer.per_call())
                                   : 0;
        if (hold_for != 0) {
            schedule_monitor_locked(saturating_after(now, held_batches::wait_behind_call));
            if (!monitor_.running())
                hold_for = 0; // its thread could not start: nothing would post behind a long call
        }
        self->may_hold = hold_for != 0;
        lk.unlock();
        if (finished) {
            batch_holder = hold_for != 0 ? &self->held : nullptr;
            std::exchange(finished, nullptr)->complete();
            batch_holder = nullptr;
            self->held.delivered();
            delivered = true;
        }
        post_held_batches(self->held, hold_for); // those due, or all once holding stops
        if (grow)
            start_threads(grow);
        self->in_call.store(true, std::memory_order_relaxed); // for the CPU sample only
        const operation::outcome outcome = op->run();
        self->in_call.store(false, std::memory_order_relaxed);
        const std::optional<clock::duration> ran = timer.call_ended([] { return clock::now(); });
        now = timer.last_reading();
        if (adapts && !stuck_lowered) {
            if (!worker_lowered && ran && *ran >= lower_after_call) {
                post_held_batches(self->held, 0); // not at the lower priority
                worker_lowered = apply_to_this_thread(options_.worker_scheduling, worker_base_nice_);
            } else if (worker_lowered && pool_calls_tiny && timer.calls_are_tiny()) {
                // Without CAP_SYS_NICE the nice value cannot come back down, nor can a thread
                // leave SCHED_IDLE: such a worker stays lowered (a new one starts at normal once
                // it has idled out: threads inherit their creator's class).
                stuck_lowered = worker_lowered = !restore_this_thread(worker_base_nice_);
            }
        }
        lk.lock();
        courier_wanted_ = courier_wanted_ || worker_lowered;
        finish_call_locked(self, op, outcome, ran);
        finished = op;
    }
    // Retire: from here on this thread no longer counts, but join() waits for its exit hook. In
    // the critical section that decided to leave: another worker deciding meanwhile would count
    // this one as staying, and both could leave (below min_threads).
    workers_.retire(self);
    refresh_fast_submit_locked(); // may close it: then nothing waits in the inbox for a thread
    threads_observed_.store(workers_.threads(), std::memory_order_relaxed);
    ++counters_.totals.threads_retired;
    ++departing_;
    // A retiring worker leaves nothing queued without a thread to run it.
    const std::size_t grow = backlog_waits_locked() || (!queue_.empty() && workers_.threads() == 0)
                                 ? plan_growth_locked(growth_asker::monitor, now)
                                 : 0;
    lk.unlock();
    post_held_batches(self->held, 0); // none: a worker idle or leaving has posted them
    if (grow)
        start_threads(grow);
    run_hook(options_.on_thread_stop, "on_thread_stop");
    current_engine = nullptr;
    worker_lowered = false;
    lk.lock();
    --departing_;
    if (workers_.threads() == 0 && workers_.starting() == 0 && departing_ == 0)
        threads_gone_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Growth

bool coordinator::backlog_waits_locked() const noexcept
{
    // Nothing to decide unless calls wait with every worker busy and room to grow (or none is
    // alive at all, or fewer than min_threads).
    const std::size_t staying = workers_.threads() - workers_.leaving(); // told to leave: gone
    const std::size_t total = staying + workers_.starting();
    return !queue_.empty() && state_ < pool_state::stopped && total < max_threads_ &&
           (workers_.busy() >= staying || total < min_threads_);
}

growth_snapshot coordinator::growth_snapshot_locked(steady_time now, growth_asker asker) const noexcept
{
    growth_snapshot s;
    s.queued = queue_.size();
    s.threads = workers_.threads() - workers_.leaving();
    s.starting = workers_.starting();
    s.busy = workers_.busy();
    s.min_threads = min_threads_;
    s.max_threads = thread_cap_.limit(max_threads_, now);
    s.finished_calls = counters_.totals.completed + counters_.totals.failed;
    s.slow_share = slow_share_;
    const steady_time oldest = workers_.oldest_call_start();
    s.oldest_running = oldest == steady_time::max() || now < oldest ? clock::duration::zero() : now - oldest;
    if (s.finished_calls == 0 && cold_sleep_seen_)
        s.oldest_activity = thread_activity::sleeping;
    s.start_failures = counters_.totals.thread_start_failures;
    if (s.start_failures > 0)
        s.since_start_failure = now - last_start_failure_;
    s.cpu_limit = cpu_limit_;
    if (cpu_figures_fresh_locked(now)) {
        s.running_cpus = cpus_per_call_ * static_cast<double>(s.busy);
        s.cpu_bound_running = static_cast<std::size_t>(cpu_bound_share_ * static_cast<double>(s.busy) + 0.5);
    }
    s.cap_lifts_after = thread_cap_.lifts_after(now);
    s.asker = asker;
    return s;
}

std::size_t coordinator::plan_growth_locked(growth_asker asker, steady_time now)
{
    // Known-tiny calls with a worker running them: the answer is "not now, unless one stalls",
    // and the monitor is already due to look for that. No clock read on the hot path.
    const bool tiny = counters_.totals.completed + counters_.totals.failed > 0 &&
                      slow_share_ < growth_policy::slow_majority && workers_.starting() == 0 &&
                      workers_.threads() >= std::max<std::size_t>(min_threads_, 1);
    if (tiny && growth_recheck_at_ != steady_time::max())
        return 0;
    if (now == steady_time{})
        now = clock::now();
    const growth_decision d = decide_growth(growth_snapshot_locked(now, asker));
    if (d.start == 0) {
        if (d.recheck_after != clock::duration::max()) {
            growth_recheck_at_ = std::min(growth_recheck_at_, saturating_after(now, d.recheck_after));
            schedule_monitor_locked(growth_recheck_at_);
        }
        return 0;
    }
    reserve_threads_locked(d.start);
    return d.start;
}

// ---------------------------------------------------------------------------------------------
// Monitor: deadlines and growth re-checks

void coordinator::schedule_monitor_locked(steady_time at)
{
    if (state_ >= pool_state::stopped || monitor_.due_by(at))
        return;
    const bool was_running = monitor_.running();
    if (!was_running)
        add_ref(); // the monitor thread's
    if (!monitor_.wake_by_locked(at, mutex_, tick_, [this] { release(); }) && !was_running)
        refs_.fetch_sub(1, std::memory_order_relaxed); // not the last: our caller's is held
}

coordinator::steady_time coordinator::monitor_tick(std::unique_lock<std::mutex>& lk, steady_time now)
{
    collect_inbox_locked(); // a look at the backlog counts the calls not yet collected
    op_list expired;
    while (operation* op = deadlines_.pop_expired(now)) {
        leave_waiting_locked(op);
        ++counters_.totals.expired;
        expired.push_back(op);
    }
    if (!expired.empty()) {
        ++aborting_;
        lk.unlock();
        {
            // Delivering never blocks this thread: completions to a pool are admitted over its
            // capacity, and a post from here to a full pool never waits for room.
            const never_block_scope never_block;
            abort_all(*this, expired,
                      std::make_exception_ptr(boost::system::system_error(make_error_code(error::deadline_expired))));
        }
        lk.lock();
        --aborting_;
        notify_if_drained_locked();
        now = clock::now();
    }
    if (now >= growth_recheck_at_)
        growth_recheck_at_ = steady_time::max();
    refresh_fast_submit_locked(); // closed while no look is scheduled
    if (backlog_waits_locked() && growth_recheck_at_ == steady_time::max()) {
        sample_cpu_locked(lk, now);
        if (!backlog_waits_locked())
            return std::min(deadlines_.earliest(), growth_recheck_at_);
        // Deciding now answers any look asked for while the sample was read.
        growth_recheck_at_ = steady_time::max();
        now = clock::now();
        growth_snapshot s = growth_snapshot_locked(now, growth_asker::monitor);
        const auto long_after = s.finished_calls > 0 ? growth_policy::stall : growth_policy::slow_call;
        if (s.oldest_running >= long_after && s.oldest_activity == thread_activity::unknown) {
            // A long call: is its thread asleep (blocked) or runnable (computing, or preempted on
            // a loaded machine)? Only the first would let another thread help.
            const pid_t tid = workers_.oldest_call_thread();
            lk.unlock();
            const thread_activity activity = worker_set::activity_of(tid);
            lk.lock();
            // Deciding now answers any look asked for meanwhile (submissions ask for one at
            // once while a cold backlog's oldest call is long).
            growth_recheck_at_ = steady_time::max();
            if (!backlog_waits_locked()) {
                refresh_fast_submit_locked(); // a look asked for meanwhile may have opened it
                return deadlines_.earliest();
            }
            s = growth_snapshot_locked(now, growth_asker::monitor);
            if (workers_.oldest_call_thread() == tid)
                s.oldest_activity = activity;
            if (s.finished_calls == 0 && s.oldest_activity == thread_activity::sleeping)
                cold_sleep_seen_ = true;
        }
        const growth_decision d = decide_growth(s);
        if (d.start > 0) {
            reserve_threads_locked(d.start);
            lk.unlock();
            start_threads(d.start);
            lk.lock();
            return clock::now(); // look again: the backlog may still want more
        }
        if (d.recheck_after != clock::duration::max())
            growth_recheck_at_ = saturating_after(now, d.recheck_after);
    }
    // While slow calls wait and the pool could grow, keep the CPU figures fresh, so that workers
    // and submissions can decide on them rather than wait for a sample (tiny calls need none).
    if (backlog_waits_locked() && slow_share_ >= growth_policy::slow_majority)
        growth_recheck_at_ = std::min(growth_recheck_at_, saturating_after(now, growth_policy::cpu_sample_period));
    refresh_fast_submit_locked();
    return std::min(deadlines_.earliest(), growth_recheck_at_);
}

coordinator::steady_time coordinator::post_batches_held_behind_long_calls(std::unique_lock<std::mutex>& lk,
                                                                          steady_time now) noexcept
{
    // A worker that has started a call but not yet held its batch is not seen by this look: the
    // look counted first, it posts the batch itself (see held_batches::hold).
    monitor_looks_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // One worker at a time, the lock released to post: a post may wake (and be preempted by)
    // the loop, which must not find the engine locked. A worker that holds batches again has
    // started another call, so the scan ends. A worker that may hold but has just posted what
    // it held is looked at again all the same: else each of its calls would wake the monitor
    // anew (see schedule_monitor_locked).
    for (;;) {
        worker* late = nullptr;
        steady_time next = steady_time::max();
        workers_.for_each_busy(workers_.busy(), [&](worker* w) {
            if (late || !w->may_hold)
                return;
            const steady_time due = saturating_after(w->since, held_batches::wait_behind_call);
            if (due > now)
                next = std::min(next, due);
            else if (w->held.any())
                late = w;
        });
        if (!late)
            return next;
        std::array<caller_registry*, held_batches::slots> taken{};
        std::size_t n = 0;
        while (n < taken.size()) {
            caller_registry* registry = late->held.take_any();
            if (!registry)
                break;
            taken[n++] = registry;
        }
        lk.unlock();
        for (std::size_t i = 0; i < n; ++i)
            taken[i]->post_handed_batch();
        lk.lock();
    }
}

// ---------------------------------------------------------------------------------------------
// CPU figures: are the running calls computing, or waiting?

namespace {
/// Most running calls sampled at once: the kernel's accounting costs a /proc read each.
constexpr std::size_t max_cpu_sampled = 32;
} // namespace

bool coordinator::cpu_figures_fresh_locked(steady_time now) const noexcept
{
    return cpus_per_call_ >= 0 && now - cpu_sampled_at_ <= 3 * growth_policy::cpu_sample_period;
}

void coordinator::sample_cpu_locked(std::unique_lock<std::mutex>& lk, steady_time now)
{
    if (now - cpu_sample_tried_ < growth_policy::cpu_sample_period / 2)
        return;
    cpu_sample_tried_ = now;
    struct reading {
        worker* w;
        pid_t tid;
        steady_time call_since; // identifies the call
        thread_cpu_clock clock;
        std::optional<thread_times> times;
        thread_activity activity;
    };
    std::vector<reading> readings;
    readings.reserve(std::min(workers_.busy(), max_cpu_sampled));
    // Only workers inside fn: one counted busy may be in the pool's own steps (handing back a
    // result, starting a thread, waiting for the lock), asleep though its call computes.
    workers_.for_each_busy(max_cpu_sampled, [&](worker* w) {
        if (w->tid != 0 && w->cpu_clock && w->in_call.load(std::memory_order_relaxed))
            readings.push_back({w, w->tid, w->since, *w->cpu_clock, std::nullopt, thread_activity::unknown});
    });
    if (readings.empty())
        return;
    lk.unlock();
    for (reading& r : readings) {
        r.activity = worker_set::activity_of(r.tid);
        if (const auto used = r.clock.used())
            r.times = thread_times{*used, read_run_delay(r.tid)};
    }
    const steady_time read_at = clock::now();
    lk.lock();
    // A call runnable now wants a CPU; one asleep wants what it used since the previous reading
    // in the same call, or (first reading of it) nothing: asleep inside fn is blocked. Across
    // the running calls, the share found runnable estimates the CPUs they want.
    running_cpu sampled;
    std::size_t with_demand = 0;
    for (const reading& r : readings) {
        worker* w = r.w;
        // Failed, moved on to another call or out of fn meanwhile: the reading may not be fn's.
        if (!r.times || w->tid != r.tid || w->since != r.call_since || !w->in_call.load(std::memory_order_relaxed))
            continue;
        const bool runnable = r.activity == thread_activity::runnable;
        const bool same_call = w->cpu_seen_since == r.call_since && w->cpu_seen_at != steady_time{};
        const auto since = read_at - w->cpu_seen_at;
        sampled.add(runnable || same_call
                        ? cpu_demand(w->cpu_seen, *r.times, since,
                                     runnable ? thread_state_now::runnable : thread_state_now::not_runnable)
                        : 0.0);
        ++with_demand;
        w->cpu_seen = *r.times;
        w->cpu_seen_at = read_at;
        w->cpu_seen_since = r.call_since;
    }
    if (with_demand == 0)
        return;
    // Per running call: calls started since are presumed like the sampled ones (as growth as a
    // tree presumes), until the next sample says otherwise.
    cpus_per_call_ = sampled.cpus_wanted / static_cast<double>(with_demand);
    cpu_bound_share_ = static_cast<double>(sampled.cpu_bound) / static_cast<double>(with_demand);
    cpu_sampled_at_ = read_at;
}

// ---------------------------------------------------------------------------------------------
// Limits, lanes, metrics

void coordinator::set_limits(std::size_t min_threads, std::size_t max_threads)
{
    pool_options check;
    check.min_threads = min_threads;
    check.max_threads = max_threads;
    validate(check);
    std::size_t to_start = 0;
    {
        std::lock_guard lk(mutex_);
        min_threads_ = min_threads;
        max_threads_ = max_threads;
        // Raise: workers told to leave by an earlier shrink, and still here, stay after all.
        workers_.recall_leaving(max_threads_);
        // Shrink: parked workers beyond the new maximum leave now; busy ones before taking
        // more work (must_leave_now_locked).
        workers_.ask_parked_to_leave(max_threads_);
        // The others re-check whether they may retire (a lower min_threads).
        workers_.wake_all_parked();
        refresh_fast_submit_locked();
        if (state_ < pool_state::stopped) {
            const std::size_t counted = workers_.threads() - workers_.leaving() + workers_.starting();
            if (counted < min_threads_)
                to_start = min_threads_ - counted;
            reserve_threads_locked(to_start);
            if (to_start == 0 && backlog_waits_locked())
                to_start = plan_growth_locked(growth_asker::monitor);
        }
    }
    start_threads(to_start);
}

lane_state* coordinator::add_lane(std::string name, std::size_t limit)
{
    if (limit == 0)
        throw std::invalid_argument("asio_blocking::lane: limit must be at least 1");
    std::lock_guard lk(mutex_);
    return lanes_.add(std::move(name), limit);
}

void coordinator::set_lane_limit(lane_state* lane, std::size_t limit)
{
    if (limit == 0)
        throw std::invalid_argument("asio_blocking::lane: limit must be at least 1");
    std::lock_guard lk(mutex_);
    lanes_.set_limit(lane, limit);
    while (operation* next = lanes_.admit_next(lane))
        place_admitted_locked(next, wake_mode::now);
}

lane_metrics coordinator::metrics(const lane_state* lane) const
{
    std::lock_guard lk(mutex_);
    return lane_gate::metrics(lane);
}

pool_metrics coordinator::metrics() const
{
    latency_histogram wait, run;
    return metrics(wait, run);
}

pool_metrics coordinator::metrics(latency_histogram& wait, latency_histogram& run) const
{
    pool_metrics m;
    {
        std::lock_guard lk(mutex_);
        // Calls in the inbox count as submitted and queued: collecting changes no outcome.
        const_cast<coordinator*>(this)->collect_inbox_locked();
        static_cast<pool_counters&>(m) = counters_.totals;
        m.threads = workers_.threads();
        m.idle_threads = workers_.idle();
        m.busy_threads = workers_.busy() + handed_off_;
        m.queued = queue_.size();
        for (unsigned p = 0; p < priority_queue::levels; ++p)
            m.queued_by_priority[p] = queue_.size(static_cast<priority>(p));
        m.waiting_admission = admission_.size();
        m.waiting_in_lanes = lanes_.held();
        m.outstanding_work = outstanding_work_.load(std::memory_order_relaxed);
        const steady_time now = clock::now();
        m.effective_max_threads = thread_cap_.limit(max_threads_, now);
        m.cpu_bound_running = cpu_figures_fresh_locked(now)
                                  ? static_cast<std::size_t>(cpu_bound_share_ * double(workers_.busy()) + 0.5)
                                  : 0;
        wait = counters_.queue_wait;
        run = counters_.run_time;
    }
    m.queue_wait = wait.summary();
    m.run_time = run.summary();
    return m;
}

} // namespace asio_blocking::detail
