// stall_detector: a heartbeat on the loop, a watching thread, and stack samples of stalled threads.
//
// How a stall is told apart from an idle loop: every threshold/2 the watching thread arms a
// timer that is already due. An idle loop (in epoll_wait) runs it within microseconds; a loop
// whose threads are all inside handlers cannot. A heartbeat still waiting `threshold` after it
// was armed is a stall if the loop's threads, sampled then, are inside handlers (and not just
// slow to be scheduled on a busy machine). The heartbeat also records which threads run the loop: Asio runs a
// timer's handler on the thread that held the reactor and hands the reactor to another idle
// thread, so successive heartbeats visit each thread of a multi-threaded loop in turn.
#include <asio_blocking/stall_detector.hpp>

#include "stack_sampler.hpp"
#include "stall_detector_probe.hpp"

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <fstream>
#include <mutex>
#include <new>
#include <optional>
#include <pthread.h>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unistd.h>

namespace asio_blocking {
namespace {

using clock = std::chrono::steady_clock;

std::int64_t ticks(clock::time_point t)
{
    return t.time_since_epoch().count();
}
clock::time_point from_ticks(std::int64_t n)
{
    return clock::time_point(clock::duration(n));
}

// State shared by the detector and its heartbeat handler, which may outlive the detector
// (queued in a context that is destroyed later). Freed by whichever lets go last.
struct heartbeat {
    static constexpr std::size_t max_threads = 64;

    std::atomic<std::size_t> refs{1};
    // Typed on the context's own executor, not any_io_executor: the handler is then invoked
    // directly, with no type-erased function object per heartbeat.
    using timer_type = boost::asio::basic_waitable_timer<clock, boost::asio::wait_traits<clock>,
                                                         boost::asio::io_context::executor_type>;
    std::optional<timer_type> timer;
    // Set by the watcher when it arms the timer, cleared by the handler when it runs.
    std::atomic<bool> pending{false};
    std::atomic<std::int64_t> ran_at{0};
    // Written by the watcher: when the heartbeat was armed (before arming it; Asio's reactor
    // lock orders that before the handler), and whether it has found the loop stalled since.
    std::atomic<std::int64_t> armed_at{0};
    std::atomic<bool> in_stall{false};
    // The longest stall that has ended; raised by the heartbeat that ends it, so that it is
    // exact as soon as the loop runs again.
    std::atomic<clock::rep> longest{0};
    // Threads seen running the heartbeat (0: free entry).
    std::array<std::atomic<pid_t>, max_threads> threads{};

    // The one heartbeat in flight lives here: Asio allocates the timer's operation with the
    // handler's associated allocator and frees it before the handler runs, so each heartbeat
    // reuses this block and nothing is allocated per heartbeat (checked with a counting global
    // operator new: no allocation in 200 heartbeats of an idle loop). The fallback to the heap
    // only serves a larger operation than planned (another Asio version).
    static constexpr std::size_t block_size = 256;
    alignas(std::max_align_t) unsigned char block[block_size];
    std::atomic<bool> block_used{false};

    void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

    void beat() noexcept
    {
        remember(gettid());
        clock::time_point now = clock::now();
        ran_at.store(ticks(now), std::memory_order_relaxed);
        if (in_stall.load(std::memory_order_relaxed))
            raise_longest(now - from_ticks(armed_at.load(std::memory_order_relaxed)));
        pending.store(false, std::memory_order_release);
    }

    void raise_longest(clock::duration d) noexcept
    {
        clock::rep seen = longest.load(std::memory_order_relaxed);
        while (d.count() > seen && !longest.compare_exchange_weak(seen, d.count(), std::memory_order_relaxed)) {
        }
    }

    // Loop threads are only added: one that left run() is skipped when sampled.
    void remember(pid_t self) noexcept
    {
        for (auto& t : threads) {
            pid_t seen = t.load(std::memory_order_relaxed);
            if (seen == self)
                break;
            if (seen == 0 && t.compare_exchange_strong(seen, self, std::memory_order_relaxed))
                break;
        }
    }
};

template <typename T>
struct heartbeat_allocator {
    using value_type = T;
    heartbeat* owner;

    heartbeat_allocator(heartbeat* h) noexcept
        : owner(h)
    {
    }
    template <typename U>
    heartbeat_allocator(const heartbeat_allocator<U>& other) noexcept
        : owner(other.owner)
    {
    }

    T* allocate(std::size_t n)
    {
        if (sizeof(T) * n <= heartbeat::block_size && alignof(T) <= alignof(std::max_align_t) &&
            !owner->block_used.exchange(true, std::memory_order_acquire))
            return reinterpret_cast<T*>(owner->block);
        return static_cast<T*>(::operator new(sizeof(T) * n));
    }
    void deallocate(T* p, std::size_t) noexcept
    {
        if (reinterpret_cast<unsigned char*>(p) == owner->block)
            owner->block_used.store(false, std::memory_order_release);
        else
            ::operator delete(p);
    }
    template <typename U>
    bool operator==(const heartbeat_allocator<U>& other) const noexcept
    {
        return owner == other.owner;
    }
};

// Holds one reference to the heartbeat state. Asio moves the handler out of its operation
// before freeing the operation's memory, so the state (and its block) outlives the free.
class heartbeat_handler {
public:
    using allocator_type = heartbeat_allocator<void>;

    explicit heartbeat_handler(heartbeat* h) noexcept
        : state_(h)
    {
        h->add_ref();
    }
    heartbeat_handler(heartbeat_handler&& other) noexcept
        : state_(std::exchange(other.state_, nullptr))
    {
    }
    heartbeat_handler& operator=(heartbeat_handler&&) = delete;
    ~heartbeat_handler()
    {
        if (state_ != nullptr)
            state_->release();
    }

    allocator_type get_allocator() const noexcept { return allocator_type(state_); }

    void operator()(boost::system::error_code ec) const noexcept
    {
        if (!ec)
            state_->beat();
    }

private:
    heartbeat* state_;
};

std::string thread_name(pid_t tid)
{
    std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
    std::string name;
    std::getline(comm, name);
    return name.empty() ? "thread " + std::to_string(tid) : name;
}

// False if the stack shows the thread inside Asio's scheduler but in none of the application's
// handlers: waiting for events or for a handler, between handlers, or running the heartbeat.
// Needs symbols for Asio's functions (debug information, or an unstripped binary); without
// them every sampled thread counts as running a handler.
bool running_a_handler(const std::vector<std::string>& stack)
{
    // The scheduler's loop; the do_ functions may be inlined into run() and its siblings.
    static const char* const loop_frames[] = {
        "boost::asio::detail::scheduler::do_run_one(",  "boost::asio::detail::scheduler::do_wait_one(",
        "boost::asio::detail::scheduler::do_poll_one(", "boost::asio::detail::scheduler::run(",
        "boost::asio::detail::scheduler::run_one(",     "boost::asio::detail::scheduler::wait_one(",
        "boost::asio::detail::scheduler::poll(",        "boost::asio::detail::scheduler::poll_one(",
    };
    auto scheduler = std::find_if(stack.begin(), stack.end(), [](const std::string& frame) {
        return std::any_of(std::begin(loop_frames), std::end(loop_frames),
                           [&](const char* loop) { return frame.find(loop) != std::string::npos; });
    });
    if (scheduler == stack.end())
        return true; // no symbols for Asio, or called from elsewhere: assume the worst
    bool handler = false;
    for (auto frame = stack.begin(); frame != scheduler; ++frame) {
        if (frame->find("heartbeat_handler") != std::string::npos)
            return false;
        bool completes =
            frame->find("::do_complete(") != std::string::npos || frame->find("executor_function") != std::string::npos;
        if (completes && frame->find("epoll_reactor::descriptor_state") == std::string::npos)
            handler = true; // the reactor's own I/O step is not a handler
    }
    return handler;
}

void print_report(const stall_report& r)
{
    std::string text = "asio_blocking: event loop stalled for " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(r.duration).count()) +
                       " ms in thread \"" + r.thread_name + "\"";
    if (r.stack.empty())
        text += " (stack not captured)\n";
    else {
        text += ":\n";
        std::size_t shown = std::min<std::size_t>(r.stack.size(), 16);
        for (std::size_t i = 0; i < shown; ++i)
            text += "  #" + std::to_string(i) + ' ' + r.stack[i] + '\n';
        if (shown < r.stack.size())
            text += "  ... " + std::to_string(r.stack.size() - shown) + " more frames\n";
    }
    std::fputs(text.c_str(), stderr);
}

} // namespace

class stall_detector::watcher {
public:
    watcher(boost::asio::io_context& ctx, stall_options options)
        : ctx_(ctx)
        , options_(std::move(options))
        , beat_(new heartbeat)
    {
        beat_->timer.emplace(ctx_);
        if (ctx_.get_executor().running_in_this_thread()) {
            // Made from a handler: the loop is known to run, on this thread.
            beat_->remember(gettid());
            seen_running_ = true;
        }
        if (options_.capture_stack && detail::stack_sampling_available()) // report a taken signal now
            detail::start_symbolizer();                                   // load debug information now
        try {
            thread_ = detail::start_quiet_thread([this] { run(); });
        } catch (...) {
            beat_->timer.reset();
            beat_->release();
            throw;
        }
    }

    ~watcher()
    {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_.store(true);
        }
        wake_.notify_one();
        thread_.join();
        // Cancels a heartbeat in flight: its handler runs (or is destroyed) later, holding the state.
        beat_->timer.reset();
        beat_->release();
    }

    std::vector<pid_t> watched_threads() const
    {
        std::vector<pid_t> tids;
        for (auto& t : beat_->threads)
            if (pid_t tid = t.load(std::memory_order_relaxed))
                tids.push_back(tid);
        return tids;
    }

    std::uint64_t stalls() const noexcept { return stalls_.load(std::memory_order_relaxed); }
    clock::duration longest() const noexcept { return clock::duration(beat_->longest.load(std::memory_order_relaxed)); }

private:
    void run()
    {
        pthread_setname_np(pthread_self(), "stall_watch");
        const clock::duration period = std::max<clock::duration>(options_.threshold / 2, clock::duration(1));
        std::unique_lock<std::mutex> lock(mutex_);
        clock::time_point next = clock::now();
        while (!wake_.wait_until(lock, next, [&] { return stopping_.load(); })) {
            lock.unlock();
            next = check(clock::now(), period);
            lock.lock();
        }
    }

    // One look at the loop; returns when to look next.
    clock::time_point check(clock::time_point now, clock::duration period)
    {
        if (!beat_->pending.load(std::memory_order_acquire)) {
            if (armed_any_) {
                // The last heartbeat ran: the loop is being run.
                clock::time_point ran = from_ticks(beat_->ran_at.load(std::memory_order_relaxed));
                if (in_stall_)
                    end_stall(ran - armed_at_);
                seen_running_ = true;
            }
            if (ctx_.stopped()) {
                seen_running_ = false; // paused until a heartbeat runs again
                return now + period;
            }
            armed_any_ = true;
            armed_at_ = now;
            next_report_ = options_.threshold;
            beat_->armed_at.store(ticks(now), std::memory_order_relaxed);
            beat_->pending.store(true, std::memory_order_relaxed);
            beat_->timer->expires_at(now);
            beat_->timer->async_wait(heartbeat_handler(beat_));
            return now + period;
        }
        if (ctx_.stopped()) {
            // Not being run: whatever stall there was has ended; wait to see the loop run again.
            if (in_stall_)
                end_stall(now - armed_at_);
            seen_running_ = false;
            return now + period;
        }
        if (!seen_running_)
            return now + period;
        clock::duration age = now - armed_at_;
        if (age >= next_report_) {
            std::vector<stall_report> reports;
            if (!sample_loop_threads(age, reports))
                return now + period; // a loop thread is not in a handler: slow to wake up, not stalled
            if (!in_stall_) {
                in_stall_ = true;
                beat_->in_stall.store(true, std::memory_order_relaxed);
                stalls_.fetch_add(1, std::memory_order_relaxed);
            }
            for (const stall_report& r : reports)
                deliver(r);
            while (next_report_ <= age)
                next_report_ *= 2;
        }
        return std::min(now + period, armed_at_ + next_report_);
    }

    void end_stall(clock::duration duration)
    {
        in_stall_ = false;
        beat_->in_stall.store(false, std::memory_order_relaxed);
        beat_->raise_longest(duration);
    }

    // A report for each watched thread inside the loop's run(), with its stack. False if one of
    // them is not running a handler (waiting for events, or between handlers): then the loop is
    // only slow to run the heartbeat (the machine is busy), and no handler blocks it.
    bool sample_loop_threads(clock::duration age, std::vector<stall_report>& reports)
    {
        for (auto& entry : beat_->threads) {
            pid_t tid = entry.load(std::memory_order_relaxed);
            if (tid == 0 || stopping_.load())
                break;
            stall_report r{age, thread_name(tid), {}};
            if (options_.capture_stack) {
                auto result = detail::sample_stack(tid, ctx_, sample_, sample_timeout(), stopping_);
                if (result == detail::sample_result::not_in_context)
                    continue; // left run(), or gone
                if (result == detail::sample_result::captured) {
                    if (detail::waiting_in_epoll(sample_))
                        return false; // decided before the slow part
                    if (!detail::symbolize(sample_, r.stack, stopping_))
                        break;
                    if (!running_a_handler(r.stack))
                        return false;
                }
            } else if (!thread_alive(tid)) {
                continue;
            }
            reports.push_back(std::move(r));
        }
        if (reports.empty())
            reports.push_back({age, "", {}}); // the stalled threads never ran a heartbeat
        return true;
    }

    // A thread in a handler answers at once; under ThreadSanitizer only at its next intercepted call.
    clock::duration sample_timeout() const
    {
        return std::clamp<clock::duration>(options_.threshold, std::chrono::milliseconds(20),
                                           std::chrono::milliseconds(200));
    }

    static bool thread_alive(pid_t tid)
    {
        std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
        return comm.good();
    }

    void deliver(const stall_report& r)
    {
        if (stopping_.load())
            return;
        try {
            if (options_.on_stall)
                options_.on_stall(r);
            else
                print_report(r);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "asio_blocking: stall_detector on_stall threw: %s\n", e.what());
        } catch (...) {
            std::fprintf(stderr, "asio_blocking: stall_detector on_stall threw a non-standard exception\n");
        }
    }

    boost::asio::io_context& ctx_;
    const stall_options options_;
    heartbeat* beat_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> stalls_{0};
    // The watching thread's own.
    bool armed_any_ = false;
    bool seen_running_ = false;
    bool in_stall_ = false;
    clock::time_point armed_at_;
    clock::duration next_report_{};
    detail::raw_stack sample_;
    std::thread thread_;
};

stall_detector::stall_detector(boost::asio::io_context& ctx, stall_options options)
{
    if (options.threshold <= clock::duration::zero())
        throw std::invalid_argument("asio_blocking::stall_options: threshold must be positive");
    watcher_ = std::make_unique<watcher>(ctx, std::move(options));
}

stall_detector::~stall_detector() = default;

std::uint64_t stall_detector::stalls() const noexcept
{
    return watcher_->stalls();
}

clock::duration stall_detector::longest_stall() const noexcept
{
    return watcher_->longest();
}

std::vector<pid_t> detail::stall_detector_probe::watched_threads(const stall_detector& d)
{
    return d.watcher_->watched_threads();
}

} // namespace asio_blocking
