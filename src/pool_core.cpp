// The pool engine: submission, priority queues, lanes, workers, growth, shutdown and metrics.
#include <asio_blocking/detail/pool_core.hpp>
#include <asio_blocking/error.hpp>

#include "thread_limit.hpp"
#include "thread_scheduling.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <system_error>

namespace asio_blocking::detail {

std::atomic<int> inject_thread_start_failures{0};

namespace {

using clock = std::chrono::steady_clock;

// Calls averaging at least this long are treated as blocking: any backlog then gets a new
// thread at once. Shorter calls are served by the threads there are, unless one stalls.
constexpr std::uint64_t slow_call_ns = 50'000;
// With fast calls, a backlog grows the pool only once a call has run this long. Longer than a
// scheduler time slice, so a worker that was merely preempted does not look stalled.
constexpr clock::duration stall_threshold = std::chrono::milliseconds(10);
// Before any call has finished, a second thread starts once the oldest call has run this long:
// a blocking burst still grows within microseconds, tiny work first shows that it is tiny.
constexpr clock::duration first_growth_after = std::chrono::nanoseconds(slow_call_ns);
// After a thread failed to start, growth pauses this long rather than retrying in a loop.
constexpr clock::duration start_failure_backoff = std::chrono::milliseconds(50);
// Most threads starting at once (blocking calls only): a new worker starts up to two more.
constexpr std::size_t concurrent_starts = 4;

thread_local const pool_core* current_core = nullptr;

std::exception_ptr aborted_error()
{
    return std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted));
}

std::uint64_t to_ns(clock::duration d) noexcept
{
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

void abort_all(op_list& ops, const std::exception_ptr& error) noexcept
{
    while (operation* op = ops.pop_front())
        op->abort(error);
}

} // namespace

struct pool_core::worker {
    std::condition_variable cv;
    operation* handoff = nullptr;
    std::list<worker>::iterator self;
    std::size_t index = 0;
    pthread_t handle{};
    bool idle = false;
    bool exit_requested = false;
};

namespace {
struct thread_start {
    std::shared_ptr<pool_core> core;
    void* worker;
};
} // namespace

// ---------------------------------------------------------------------------------------------
// Construction and destruction

pool_core::pool_core(pool_options options)
    : options_(std::move(options))
    , min_threads_(options_.min_threads)
    , max_threads_(options_.max_threads)
    , os_thread_cap_(os_thread_headroom().value_or(SIZE_MAX))
    , worker_base_nice_(this_thread_nice())
    , avg_run_ns_(0)
{
}

std::shared_ptr<pool_core> pool_core::create(pool_options options)
{
    validate(options);
    // The last shared owner does not delete the core while tracked work remains.
    std::shared_ptr<pool_core> core(new pool_core(std::move(options)), [](pool_core* c) { c->release_lifetime(); });
    if (const std::size_t n = core->min_threads_) {
        {
            std::lock_guard lk(core->mutex_);
            core->starting_ += n;
        }
        core->start_threads(n);
    }
    return core;
}

pool_core::~pool_core()
{
    // Reached once the pool, every thread and all tracked work have let go. shutdown() has joined
    // or detached every thread by then, so this is normally empty; a destructor must not block.
    for (pthread_t t : exited_)
        if (!pthread_equal(t, pthread_self()))
            pthread_detach(t);
    if (monitor_.joinable())
        monitor_.detach();
}

// ---------------------------------------------------------------------------------------------
// Submission

bool pool_core::accepting_locked() const noexcept
{
    switch (state_) {
    case pool_state::running:
        return true;
    case pool_state::draining:
        // Work that accepted work creates (continuations) is still accepted while draining.
        return running_in_this_thread() || outstanding_work_.load(std::memory_order_relaxed) > 0;
    default:
        return false;
    }
}

pool_core::admission pool_core::submit(operation* op)
{
    auto now = clock::now(); // read before locking: the lock is contended on the hot path
    std::unique_lock lk(mutex_);
    ++submitted_;
    if (op->bypass_stop_) {
        if (state_ == pool_state::joined || threads_ + starting_ == 0) {
            ++rejected_;
            return admission::refused_stopped;
        }
    } else if (!accepting_locked()) {
        ++rejected_;
        return admission::refused_stopped;
    }
    worker* wake = nullptr;

    op->stamp_ = now;
    if (lane_core* lane = op->lane_; lane && lane->admitted_ >= lane->limit_) {
        lane->waiting_.push_back(op);
        op->place_ = op_place::lane;
    } else {
        const bool full =
            options_.queue_capacity != 0 && queued_ >= options_.queue_capacity && idle_.empty() && !op->bypass_stop_;
        // A pool thread never waits on its own pool: that could deadlock it.
        if (full && !(running_in_this_thread() && !op->can_wait_for_room_)) {
            if (options_.on_overflow == overflow_policy::reject) {
                ++rejected_;
                return admission::refused_full;
            }
            if (!op->can_wait_for_room_) {
                ++room_waiters_;
                room_cv_.wait(lk, [&] {
                    return state_ >= pool_state::stopped || !idle_.empty() || queued_ < options_.queue_capacity;
                });
                --room_waiters_;
                if (!accepting_locked()) {
                    ++rejected_;
                    return admission::refused_stopped;
                }
                now = clock::now(); // the wait still counts as queue wait: stamp_ is kept
            }
        }
        if (lane)
            ++lane->admitted_;
        admit_locked(op, &wake, now);
    }

    if (op->place_ != op_place::running && op->deadline_ != clock::time_point::max()) {
        deadlines_.emplace(op->deadline_, op);
        monitor_needed_locked(op->deadline_);
    }
    const bool grow = plan_growth_locked(now); // at once, rather than via the monitor
    if (grow)
        ++starting_;
    lk.unlock();
    if (wake)
        wake->cv.notify_one();
    if (grow)
        start_threads(1);
    return admission::accepted;
}

// Places an admitted op: straight to an idle worker, into the queue, or (queue full, op able
// to wait) into the admission FIFO. Never blocks.
void pool_core::admit_locked(operation* op, worker** wake_later, clock::time_point now)
{
    if (!idle_.empty()) {
        hand_off_locked(op, wake_later);
    } else if (options_.queue_capacity != 0 && queued_ >= options_.queue_capacity && op->can_wait_for_room_ &&
               !op->bypass_stop_) {
        admission_.push_back(op);
        op->place_ = op_place::admission;
    } else {
        enqueue_locked(op, now, wake_later ? growth_check::by_caller : growth_check::here);
    }
}

void pool_core::enqueue_locked(operation* op, clock::time_point now, growth_check growth)
{
    queues_[static_cast<unsigned>(op->priority_)].push_back(op);
    op->place_ = op_place::queued;
    if (++queued_ > peak_queued_)
        peak_queued_ = queued_;
    // Make sure the pool grows if it should, whichever path queued the call (a lane or the
    // admission FIFO letting one through, a cancellation). No thread is started under the lock:
    // the monitor does it. submit() plans growth itself and starts the thread at once.
    if (growth == growth_check::here && busy_ >= threads_ && threads_ + starting_ < effective_max_threads_locked() &&
        state_ < pool_state::stopped) {
        if (now == clock::time_point{})
            now = clock::now();
        if (plan_growth_locked(now))
            monitor_needed_locked(now);
    }
}

void pool_core::hand_off_locked(operation* op, worker** wake_later)
{
    // LIFO: the most recently idle worker is warm, and the others get to time out.
    worker* w = idle_.back();
    idle_.pop_back();
    w->idle = false;
    w->handoff = op;
    // The wait ends when the worker is running, not now: it records the wait once awake, so
    // queue_wait includes the wake-up latency.
    start_locked(op, op->stamp_, false);
    if (wake_later)
        *wake_later = w;
    else
        w->cv.notify_one();
}

operation* pool_core::take_next_locked(clock::time_point now)
{
    if (queued_ == 0)
        return nullptr;
    // A level passed over priority_ageing_limit times goes first; otherwise the highest.
    unsigned chosen = 3;
    for (unsigned p = 0; p < 3 && chosen == 3; ++p)
        if (!queues_[p].empty() && passed_over_[p] >= priority_ageing_limit)
            chosen = p;
    for (unsigned p = 3; p-- > 0 && chosen == 3;)
        if (!queues_[p].empty())
            chosen = p;
    for (unsigned p = 0; p < chosen; ++p)
        if (!queues_[p].empty())
            ++passed_over_[p];
    passed_over_[chosen] = 0;

    operation* op = queues_[chosen].pop_front();
    --queued_;
    start_locked(op, now);
    room_freed_locked();
    return op;
}

void pool_core::start_locked(operation* op, clock::time_point now, bool record_wait)
{
    if (op->deadline_ != clock::time_point::max())
        deadlines_.erase({op->deadline_, op});
    if (record_wait) {
        queue_wait_.record(to_ns(now - op->stamp_));
        op->stamp_ = now;
    }
    op->place_ = op_place::running;
    running_.push_back(op);
    ++busy_;
    if (lane_core* lane = op->lane_)
        lane->peak_running_ = std::max(lane->peak_running_, ++lane->running_);
}

void pool_core::finish_locked(operation* op, operation::outcome outcome, clock::duration run_time)
{
    running_.erase(op);
    --busy_;
    ++delivering_;
    const bool abandoned = op->place_ == op_place::abandoned; // already counted when cancelled
    op->place_ = op_place::none;
    if (outcome != operation::outcome::skipped) {
        const std::uint64_t ns = to_ns(run_time);
        run_time_.record(ns);
        // Moving average over ~8 calls: quick to notice that calls turned slow, or fast.
        if (!have_avg_run_) {
            avg_run_ns_ = ns;
            have_avg_run_ = true;
        } else {
            avg_run_ns_ = static_cast<std::uint64_t>(
                static_cast<std::int64_t>(avg_run_ns_) +
                (static_cast<std::int64_t>(ns) - static_cast<std::int64_t>(avg_run_ns_)) / 8);
        }
    }
    if (!abandoned) {
        switch (outcome) {
        case operation::outcome::returned:
            ++completed_;
            break;
        case operation::outcome::threw:
            ++failed_;
            break;
        case operation::outcome::skipped:
            ++cancelled_;
            break;
        }
    }
    if (lane_core* lane = op->lane_) {
        --lane->running_;
        if (outcome != operation::outcome::skipped)
            ++lane->completed_;
        release_lane_slot_locked(lane);
    }
}

// Takes a waiting (not yet started) op out of wherever it waits.
void pool_core::leave_waiting_locked(operation* op)
{
    if (op->deadline_ != clock::time_point::max())
        deadlines_.erase({op->deadline_, op});
    switch (op->place_) {
    case op_place::lane:
        op->lane_->waiting_.erase(op);
        break;
    case op_place::admission:
        admission_.erase(op);
        if (op->lane_)
            release_lane_slot_locked(op->lane_);
        break;
    case op_place::queued:
        queues_[static_cast<unsigned>(op->priority_)].erase(op);
        --queued_;
        room_freed_locked();
        if (op->lane_)
            release_lane_slot_locked(op->lane_);
        break;
    default:
        break;
    }
    op->place_ = op_place::none;
}

void pool_core::release_lane_slot_locked(lane_core* lane)
{
    --lane->admitted_;
    while (lane->admitted_ < lane->limit_ && !lane->waiting_.empty()) {
        operation* next = lane->waiting_.pop_front();
        ++lane->admitted_;
        admit_locked(next);
    }
}

void pool_core::room_freed_locked()
{
    if (!admission_.empty()) {
        enqueue_locked(admission_.pop_front()); // admission waiters go first, in order
    } else if (room_waiters_ > 0) {
        room_cv_.notify_one();
    }
}

void pool_core::take_all_waiting_locked(op_list& out)
{
    for (auto& q : queues_)
        out.splice_back(q);
    out.splice_back(admission_);
    for (lane_core& lane : lanes_) {
        out.splice_back(lane.waiting_);
        lane.admitted_ = lane.running_;
    }
    for (operation* op = out.front(); op; op = op->next_)
        op->place_ = op_place::none;
    queued_ = 0;
    passed_over_ = {};
    deadlines_.clear();
}

// ---------------------------------------------------------------------------------------------
// Cancellation, stop, join

pool_core::cancel_outcome pool_core::cancel(operation* op, bool abandon_running, std::stop_source& stop)
{
    std::unique_lock lk(mutex_);
    switch (op->place_) {
    case op_place::lane:
    case op_place::admission:
    case op_place::queued:
        leave_waiting_locked(op);
        ++cancelled_;
        if (drain_waiters_ > 0 && drained_locked())
            drained_cv_.notify_all();
        return cancel_outcome::removed;
    case op_place::running:
        if (!abandon_running)
            return cancel_outcome::too_late;
        op->place_ = op_place::abandoned;
        ++cancelled_;
        ++abandoned_;
        stop = op->stop_source_;
        return cancel_outcome::abandoned;
    default:
        return cancel_outcome::too_late;
    }
}

void pool_core::stop() noexcept
{
    op_list aborted;
    std::vector<std::stop_source> stops;
    {
        std::lock_guard lk(mutex_);
        if (state_ < pool_state::stopped)
            state_ = pool_state::stopped;
        take_all_waiting_locked(aborted);
        cancelled_ += aborted.size();
        try {
            for (operation* op = running_.front(); op; op = op->next_)
                if (op->stop_source_.stop_possible())
                    stops.push_back(op->stop_source_);
        } catch (...) {
            // Out of memory: running calls are simply not asked to stop early.
        }
        wake_idle_workers_locked();
        room_cv_.notify_all();
        drained_cv_.notify_all();
    }
    if (!aborted.empty())
        abort_all(aborted, aborted_error());
    for (auto& s : stops)
        s.request_stop();
}

bool pool_core::drained_locked() const noexcept
{
    if (queued_ != 0 || !admission_.empty() || busy_ != 0 || delivering_ != 0 ||
        outstanding_work_.load(std::memory_order_relaxed) != 0)
        return false;
    return std::all_of(lanes_.begin(), lanes_.end(), [](const lane_core& l) { return l.waiting_.empty(); });
}

void pool_core::work_finished() noexcept
{
    if (outstanding_work_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lk(mutex_);
        if (drain_waiters_ > 0 && drained_locked())
            drained_cv_.notify_all();
    }
    release_lifetime();
}

void pool_core::release_lifetime() noexcept
{
    if (lifetime_.fetch_sub(1, std::memory_order_acq_rel) == 1)
        delete this;
}

void pool_core::join()
{
    if (running_in_this_thread())
        throw std::logic_error("asio_blocking: join() called from one of the pool's own threads "
                               "would wait for itself");
    std::unique_lock lk(mutex_);
    if (state_ == pool_state::running)
        state_ = pool_state::draining;
    ++drain_waiters_;
    drained_cv_.wait(lk, [&] { return state_ >= pool_state::stopped || drained_locked(); });
    --drain_waiters_;
    join_threads(lk);
}

bool pool_core::join_for(clock::duration timeout)
{
    if (running_in_this_thread())
        throw std::logic_error("asio_blocking: join_for() called from one of the pool's own threads "
                               "would wait for itself");
    const auto deadline = clock::now() + timeout;
    std::unique_lock lk(mutex_);
    if (state_ == pool_state::running)
        state_ = pool_state::draining;
    ++drain_waiters_;
    const bool drained = drained_cv_.wait_until(lk, deadline, [&] {
        return drained_locked() || (state_ >= pool_state::stopped && busy_ == 0 && delivering_ == 0);
    });
    --drain_waiters_;
    if (drained) {
        join_threads(lk);
        return true;
    }
    // Give up: abort what waits, ask running calls to stop, and leave their threads behind.
    detach_threads_ = true;
    for (pthread_t t : exited_)
        pthread_detach(t);
    exited_.clear();
    lk.unlock();
    stop();
    return false;
}

void pool_core::shutdown() noexcept
{
    stop();
    std::unique_lock lk(mutex_);
    if (state_ == pool_state::joined)
        return;
    if (!detach_threads_ && !running_in_this_thread()) {
        join_threads(lk);
        return;
    }
    // The threads cannot be waited for (join_for gave up, or we are one of them): detach them.
    // They hold a reference to this core, so they finish safely on their own.
    detach_threads_ = true;
    for (pthread_t t : exited_)
        if (!pthread_equal(t, pthread_self()))
            pthread_detach(t);
    exited_.clear();
    state_ = pool_state::joined;
    monitor_stop_ = true;
    monitor_cv_.notify_all();
    if (monitor_.joinable()) {
        std::thread m = std::move(monitor_);
        lk.unlock();
        if (m.get_id() == std::this_thread::get_id())
            m.detach();
        else
            m.join();
    }
}

void pool_core::join_threads(std::unique_lock<std::mutex>& lk)
{
    if (state_ < pool_state::stopped)
        state_ = pool_state::stopped;
    wake_idle_workers_locked();
    threads_gone_cv_.wait(lk, [&] { return threads_ == 0 && starting_ == 0; });
    std::vector<pthread_t> exited = std::move(exited_);
    exited_.clear();
    monitor_stop_ = true;
    monitor_cv_.notify_all();
    std::thread monitor = std::move(monitor_);
    state_ = pool_state::joined;
    lk.unlock();
    for (pthread_t t : exited)
        pthread_join(t, nullptr);
    if (monitor.joinable()) {
        if (monitor.get_id() == std::this_thread::get_id())
            monitor.detach();
        else
            monitor.join();
    }
    lk.lock();
}

void pool_core::wake_idle_workers_locked() noexcept
{
    for (worker* w : idle_)
        w->cv.notify_one();
    monitor_cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Threads

bool pool_core::running_in_this_thread() const noexcept
{
    return current_core == this;
}

bool pool_core::caller_is_sole_thread() const
{
    if (!running_in_this_thread())
        return false;
    std::lock_guard lk(mutex_);
    return max_threads_ == 1;
}

bool pool_core::plan_growth_locked(clock::time_point now)
{
    if (should_start_thread_locked(now))
        return true;
    // Not now, but a backlog with every worker busy may call for a thread later (a call turning
    // out to block): have the monitor check again then, so growth never waits on a submission.
    if (queued_ > 0 && busy_ >= threads_ && threads_ + starting_ < effective_max_threads_locked() &&
        state_ < pool_state::stopped)
        monitor_needed_locked(now + growth_recheck_locked(now));
    return false;
}

std::chrono::steady_clock::duration pool_core::growth_recheck_locked(clock::time_point now) const noexcept
{
    const clock::duration after = have_avg_run_ ? stall_threshold : first_growth_after;
    const clock::duration backoff_left = last_start_failure_ + start_failure_backoff - now;
    return std::max(after, backoff_left);
}

bool pool_core::should_start_thread_locked(clock::time_point now) const noexcept
{
    if (state_ >= pool_state::stopped || threads_ + starting_ >= effective_max_threads_locked())
        return false;
    if (threads_ + starting_ < min_threads_)
        return true;
    // Threads already starting will take that many queued calls.
    if (queued_ <= starting_ || busy_ < threads_)
        return false;
    if (threads_ == 0 && starting_ == 0)
        return true;
    if (now - last_start_failure_ < start_failure_backoff)
        return false;
    const auto longest_running = running_.empty() ? clock::duration::zero() : now - running_.front()->stamp_;
    // Blocking calls: recent ones averaged slow_call_ns, or (none finished yet) the oldest has
    // already run that long.
    const bool blocking = have_avg_run_ ? avg_run_ns_ >= slow_call_ns : longest_running >= first_growth_after;
    // Each new worker re-checks once it has taken a call (a cascade). For blocking calls starts
    // overlap, so a cold burst reaches max_threads sooner; other work grows one at a time.
    if (starting_ > 0)
        return blocking && starting_ < concurrent_starts;
    return blocking || (have_avg_run_ && longest_running >= stall_threshold);
}

void pool_core::start_threads(std::size_t count) noexcept
{
    for (std::size_t i = 0; i < count; ++i) {
        worker* w = nullptr;
        int rc = 0;
        try {
            {
                std::lock_guard lk(mutex_);
                if (spare_workers_.empty())
                    workers_.emplace_back();
                else
                    workers_.splice(workers_.end(), spare_workers_, spare_workers_.begin());
                w = &workers_.back();
                w->self = std::prev(workers_.end());
                w->handoff = nullptr;
                w->idle = w->exit_requested = false;
            }
            auto* start = new thread_start{shared_from_this(), w};
            int expected = inject_thread_start_failures.load();
            while (expected > 0 && !inject_thread_start_failures.compare_exchange_weak(expected, expected - 1)) {
            }
            if (expected > 0) {
                rc = EAGAIN;
            } else {
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                if (options_.stack_size != 0)
                    pthread_attr_setstacksize(&attr, std::max<std::size_t>(options_.stack_size, PTHREAD_STACK_MIN));
                // Workers block all signals, so they are delivered to the application's threads.
                sigset_t all, old;
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                pthread_t handle;
                rc = pthread_create(&handle, &attr, &pool_core::thread_main, start);
                pthread_sigmask(SIG_SETMASK, &old, nullptr);
                pthread_attr_destroy(&attr);
            }
            if (rc != 0)
                delete start;
        } catch (...) {
            rc = ENOMEM;
        }
        if (rc == 0)
            continue;

        // The thread did not start. Queued work waits for the workers there are; with none
        // left, nothing would ever run it, so it fails with the start error.
        op_list stranded;
        {
            std::lock_guard lk(mutex_);
            if (w)
                spare_workers_.splice(spare_workers_.end(), workers_, w->self);
            --starting_;
            ++thread_start_failures_;
            last_start_failure_ = clock::now();
            if (threads_ == 0 && starting_ == 0) {
                take_all_waiting_locked(stranded);
                failed_ += stranded.size();
                threads_gone_cv_.notify_all();
                drained_cv_.notify_all();
            }
        }
        if (!stranded.empty())
            abort_all(stranded, std::make_exception_ptr(std::system_error(
                                    rc, std::generic_category(), "asio_blocking: cannot start a worker thread")));
    }
}

void* pool_core::thread_main(void* arg)
{
    std::unique_ptr<thread_start> start(static_cast<thread_start*>(arg));
    std::shared_ptr<pool_core> core = std::move(start->core);
    core->worker_loop(*static_cast<worker*>(start->worker));
    return nullptr;
}

void pool_core::run_hook(const std::function<void()>& hook, const char* which) noexcept
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
    ++hook_failures_;
}

void pool_core::worker_loop(worker& self)
{
    current_core = this;
    std::size_t index;
    {
        std::lock_guard lk(mutex_);
        --starting_;
        ++threads_;
        threads_observed_.store(threads_, std::memory_order_relaxed);
        ++threads_started_;
        peak_threads_ = std::max(peak_threads_, threads_);
        self.handle = pthread_self();
        auto free_slot = std::find(index_used_.begin(), index_used_.end(), false);
        index = static_cast<std::size_t>(free_slot - index_used_.begin());
        if (free_slot == index_used_.end())
            index_used_.push_back(true);
        else
            *free_slot = true;
        self.index = index;
    }
    {
        const std::string suffix = std::to_string(index);
        std::string name = options_.thread_name.substr(0, 15 - std::min<std::size_t>(15, suffix.size()));
        name += suffix;
        pthread_setname_np(pthread_self(), name.c_str());
    }
    // A refusal leaves the worker in the class it was created with; nothing else depends on it.
    apply_to_this_thread(options_.worker_scheduling, worker_base_nice_);
    run_hook(options_.on_thread_start, "on_thread_start");

    std::unique_lock lk(mutex_);
    operation* finished = nullptr; // ran; its result is handed back outside the lock
    bool delivered = false;        // a result was handed back since the lock was last held
    // The time the previous call ended doubles as "now" for taking the next one: one clock
    // reading fewer per call on the hot path.
    clock::time_point now = clock::now();
    for (;;) {
        if (delivered) {
            delivered = false;
            --delivering_;
            if (drain_waiters_ > 0 && drained_locked())
                drained_cv_.notify_all();
        }
        operation* op = take_next_locked(now);
        if (!op && finished) {
            // Hand the result back before going idle: the handler may submit more work.
            lk.unlock();
            std::exchange(finished, nullptr)->complete();
            lk.lock();
            delivered = true;
            now = clock::now();
            continue;
        }
        if (!op) {
            if (worker_should_exit_locked(self))
                break;
            self.idle = true;
            idle_.push_back(&self);
            auto idle_until = now + options_.idle_timeout;
            while (!self.handoff && !self.exit_requested && state_ < pool_state::stopped) {
                if (self.cv.wait_until(lk, idle_until) == std::cv_status::timeout && !self.handoff) {
                    if (threads_ > min_threads_)
                        break;
                    idle_until = clock::now() + options_.idle_timeout;
                }
            }
            if (!self.handoff)
                break; // timed out, asked to exit, or stopped: retire (removes self from idle_)
            op = std::exchange(self.handoff, nullptr); // already started by hand_off_locked
            now = clock::now();
            queue_wait_.record(to_ns(now - op->stamp_));
            op->stamp_ = now;
        }
        std::size_t grow = 0; // a worker may start two (a tree, not a chain); the loop's submit one
        for (; grow < 2 && plan_growth_locked(now); ++grow)
            ++starting_;
        lk.unlock();
        if (finished) {
            std::exchange(finished, nullptr)->complete();
            delivered = true;
        }
        if (grow)
            start_threads(grow);
        const auto started = clock::now();
        const operation::outcome outcome = op->run();
        now = clock::now();
        const auto run_time = now - started;
        lk.lock();
        finish_locked(op, outcome, run_time);
        finished = op;
    }
    retire_locked(self);
    lk.unlock();
    run_hook(options_.on_thread_stop, "on_thread_stop");
    current_core = nullptr;
}

bool pool_core::worker_should_exit_locked(const worker& self) const noexcept
{
    // Idle workers already told to leave count as gone, so busy ones do not leave as well.
    return self.exit_requested || state_ >= pool_state::stopped || threads_ - exits_pending_ > max_threads_;
}

void pool_core::retire_locked(worker& self)
{
    if (self.idle)
        idle_.erase(std::find(idle_.begin(), idle_.end(), &self));
    if (self.exit_requested)
        --exits_pending_;
    --threads_;
    threads_observed_.store(threads_, std::memory_order_relaxed);
    ++threads_retired_;
    index_used_[self.index] = false;
    if (detach_threads_)
        pthread_detach(self.handle);
    else
        exited_.push_back(self.handle);
    spare_workers_.splice(spare_workers_.end(), workers_, self.self);
    if (threads_ == 0 && starting_ == 0)
        threads_gone_cv_.notify_all();
}

void pool_core::set_limits(std::size_t min_threads, std::size_t max_threads)
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
        // Shrink: idle workers beyond the new maximum leave now (oldest first); busy ones
        // leave when they finish (worker_should_exit_locked).
        for (auto it = idle_.begin(); it != idle_.end() && threads_ - exits_pending_ > max_threads_; ++it) {
            if (!(*it)->exit_requested) {
                (*it)->exit_requested = true;
                (*it)->cv.notify_one();
                ++exits_pending_;
            }
        }
        if (state_ < pool_state::stopped) {
            if (threads_ + starting_ < min_threads_)
                to_start = min_threads_ - threads_ - starting_;
            else if (should_start_thread_locked(clock::now()))
                to_start = 1;
            starting_ += to_start;
        }
    }
    start_threads(to_start);
}

// ---------------------------------------------------------------------------------------------
// Deadlines and stall detection: a monitor thread that exists only once needed.

void pool_core::monitor_needed_locked(clock::time_point wake_at)
{
    if (monitor_stop_ || state_ >= pool_state::stopped)
        return;
    if (!monitor_.joinable()) {
        try {
            monitor_ = std::thread([this] {
                // Started by whichever thread first needed it, often a worker in a lower class.
                restore_this_thread(worker_base_nice_);
                pthread_setname_np(pthread_self(), "ab-monitor");
                monitor_loop();
            });
        } catch (...) {
            return; // without a monitor, deadlines are still enforced when calls start
        }
    }
    if (wake_at < monitor_wake_at_) {
        monitor_wake_at_ = wake_at;
        monitor_cv_.notify_one();
    }
}

void pool_core::monitor_loop()
{
    std::unique_lock lk(mutex_);
    while (!monitor_stop_) {
        monitor_wake_at_ = clock::time_point::min(); // awake: no need to notify us
        const auto now = clock::now();
        op_list expired;
        while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
            operation* op = deadlines_.begin()->second;
            leave_waiting_locked(op);
            ++expired_;
            expired.push_back(op);
        }
        if (!expired.empty()) {
            if (drain_waiters_ > 0 && drained_locked())
                drained_cv_.notify_all();
            lk.unlock();
            abort_all(expired,
                      std::make_exception_ptr(boost::system::system_error(make_error_code(error::deadline_expired))));
            lk.lock();
            continue;
        }
        if (should_start_thread_locked(now)) {
            ++starting_;
            lk.unlock();
            start_threads(1);
            lk.lock();
            continue;
        }
        auto wake = deadlines_.empty() ? clock::time_point::max() : deadlines_.begin()->first;
        if (queued_ > 0 && busy_ >= threads_ && threads_ + starting_ < effective_max_threads_locked())
            wake = std::min(wake, now + growth_recheck_locked(now));
        monitor_wake_at_ = wake;
        if (wake == clock::time_point::max())
            monitor_cv_.wait(lk);
        else
            monitor_cv_.wait_until(lk, wake);
    }
}

// ---------------------------------------------------------------------------------------------
// Lanes and metrics

lane_core* pool_core::add_lane(std::string name, std::size_t limit)
{
    if (limit == 0)
        throw std::invalid_argument("asio_blocking::lane: limit must be at least 1");
    std::lock_guard lk(mutex_);
    return &lanes_.emplace_back(std::move(name), limit);
}

void pool_core::set_lane_limit(lane_core* lane, std::size_t limit)
{
    if (limit == 0)
        throw std::invalid_argument("asio_blocking::lane: limit must be at least 1");
    std::lock_guard lk(mutex_);
    lane->limit_ = limit;
    ++lane->admitted_; // release_lane_slot_locked admits waiters up to the new limit
    release_lane_slot_locked(lane);
}

lane_metrics pool_core::metrics(const lane_core* lane) const
{
    std::lock_guard lk(mutex_);
    return {lane->name_,           lane->limit_,        lane->running_,  lane->admitted_,
            lane->waiting_.size(), lane->peak_running_, lane->completed_};
}

pool_metrics pool_core::metrics() const
{
    pool_metrics m;
    latency_histogram wait, run;
    {
        std::lock_guard lk(mutex_);
        m.threads = threads_;
        m.idle_threads = idle_.size();
        m.busy_threads = busy_;
        m.queued = queued_;
        for (unsigned p = 0; p < 3; ++p)
            m.queued_by_priority[p] = queues_[p].size();
        m.waiting_admission = admission_.size();
        for (const lane_core& l : lanes_)
            m.waiting_in_lanes += l.waiting_.size();
        m.outstanding_work = outstanding_work_.load(std::memory_order_relaxed);
        m.effective_max_threads = effective_max_threads_locked();
        m.submitted = submitted_;
        m.completed = completed_;
        m.failed = failed_;
        m.cancelled = cancelled_;
        m.abandoned = abandoned_;
        m.rejected = rejected_;
        m.expired = expired_;
        m.threads_started = threads_started_;
        m.threads_retired = threads_retired_;
        m.thread_start_failures = thread_start_failures_;
        m.hook_failures = hook_failures_;
        m.peak_threads = peak_threads_;
        m.peak_queued = peak_queued_;
        wait = queue_wait_;
        run = run_time_;
    }
    m.queue_wait = wait.summary();
    m.run_time = run.summary();
    return m;
}

} // namespace asio_blocking::detail
