// Counts detached threads so that a program can wait for them before destroying what they
// use (an io_context, a database). Shared by the login service and the benchmark, whose
// thread-per-call modes detach a thread per call.
#ifndef ASIO_BLOCKING_EXAMPLE_DETACHED_THREADS_HPP
#define ASIO_BLOCKING_EXAMPLE_DETACHED_THREADS_HPP

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace example {

class detached_threads {
public:
    /// Call before starting a thread.
    void started()
    {
        std::lock_guard lk(mutex_);
        ++live_;
    }

    /// The thread's last touch of anything shared: call it after everything the thread holds
    /// of the loop has been released.
    void finished()
    {
        std::lock_guard lk(mutex_);
        if (--live_ == 0)
            gone_.notify_all();
    }

    /// Waits until every started thread has finished.
    void wait_all()
    {
        std::unique_lock lk(mutex_);
        gone_.wait(lk, [&] { return live_ == 0; });
    }

private:
    std::mutex mutex_;
    std::condition_variable gone_;
    std::size_t live_ = 0;
};

} // namespace example

#endif
