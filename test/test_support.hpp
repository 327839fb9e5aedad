// Helpers shared by the tests: condition waits with generous deadlines, gates, counters.
#ifndef ASIO_BLOCKING_TEST_SUPPORT_HPP
#define ASIO_BLOCKING_TEST_SUPPORT_HPP

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace test {

using namespace std::chrono_literals;

/// Generous: tests must pass on a slow, loaded 2-core machine (and under sanitizers).
inline constexpr auto patience = 60s;

/// Waits until `pred()` holds, re-checking every millisecond; false if `limit` passes first.
template <typename Pred>
bool eventually(Pred pred, std::chrono::steady_clock::duration limit = patience)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/// Runs `io` until `pred()` holds; false if `limit` passes first.
template <typename Pred>
bool run_until(boost::asio::io_context& io, Pred pred, std::chrono::steady_clock::duration limit = patience)
{
    const auto deadline = std::chrono::steady_clock::now() + limit;
    io.restart();
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        io.run_one_for(10ms);
        if (io.stopped())
            io.restart();
    }
    return true;
}

/// A gate blocking calls until the test opens it (with a deadline, so a broken test fails
/// instead of hanging). Counts the callers waiting at it.
class gate {
public:
    void open()
    {
        std::lock_guard lk(mutex_);
        open_ = true;
        cv_.notify_all();
    }

    /// Blocks until open; returns false if `limit` passed first.
    bool wait(std::chrono::steady_clock::duration limit = patience)
    {
        std::unique_lock lk(mutex_);
        ++waiting_;
        const bool ok = cv_.wait_for(lk, limit, [&] { return open_; });
        --waiting_;
        return ok;
    }

    int waiting() const
    {
        std::lock_guard lk(mutex_);
        return waiting_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
    int waiting_ = 0;
};

/// Scales the round counts of stress tests (ASIO_BLOCKING_STRESS_SCALE, default 1).
inline double stress_scale()
{
    const char* s = std::getenv("ASIO_BLOCKING_STRESS_SCALE");
    return s ? std::atof(s) : 1.0;
}

inline int rounds(int n)
{
    const int r = static_cast<int>(n * stress_scale());
    return r < 1 ? 1 : r;
}

} // namespace test

#endif
