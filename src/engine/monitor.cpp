// The pool's monitor thread: wakes for queue deadlines and growth re-checks, and sleeps otherwise.
#include "monitor.hpp"

#include <pthread.h>

#include <algorithm>

namespace asio_blocking::detail {

bool monitor::wake_by_locked(steady_time at, std::mutex& mutex, const tick_fn& tick, std::function<void()> on_exit)
{
    if (stopped_)
        return false;
    if (!thread_.joinable()) {
        try {
            thread_ = std::thread([this, &mutex, tick, on_exit = std::move(on_exit)] {
                restore_this_thread(creator_nice_); // before it is named, so tests see it done
                pthread_setname_np(pthread_self(), "ab-monitor");
                run(mutex, tick);
                on_exit(); // may destroy this monitor: nothing after it touches it
            });
        } catch (...) {
            return false;
        }
    }
    if (at < wake_at_) {
        wake_at_ = at;
        cv_.notify_one();
    }
    return true;
}

std::thread monitor::stop_locked()
{
    stopped_ = true;
    cv_.notify_all();
    return std::move(thread_);
}

void monitor::run(std::mutex& mutex, tick_fn tick)
{
    std::unique_lock lk(mutex);
    while (!stopped_) {
        const auto now = std::chrono::steady_clock::now();
        if (wake_at_ <= now) {
            // Requests made while `tick` has the lock released lower it again.
            wake_at_ = steady_time::max();
            const steady_time next = tick(lk, now);
            wake_at_ = std::min(wake_at_, next);
            continue;
        }
        if (wake_at_ == steady_time::max())
            cv_.wait(lk);
        else
            cv_.wait_until(lk, wake_at_);
    }
}

} // namespace asio_blocking::detail
