// Helpers shared by the tests: condition waits with generous deadlines, gates, counters.
#ifndef ASIO_BLOCKING_TEST_SUPPORT_HPP
#define ASIO_BLOCKING_TEST_SUPPORT_HPP

#include <asio_blocking/async_blocking.hpp>
#include <asio_blocking/blocking_pool.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

/// Occupies `threads` threads of a pool (each blocked at a gate) until released.
struct busy_pool {
    gate blocker;
    std::vector<std::future<void>> calls;

    busy_pool(asio_blocking::blocking_pool& pool, int threads)
    {
        for (int i = 0; i < threads; ++i)
            calls.push_back(asio_blocking::async_blocking(
                pool.get_executor(), [this] { blocker.wait(); }, boost::asio::use_future));
        BOOST_REQUIRE(eventually([&] { return blocker.waiting() == threads; }));
    }

    /// Lets the calls finish and waits for them.
    void release()
    {
        blocker.open();
        for (auto& c : calls)
            c.get();
        calls.clear();
    }

    ~busy_pool() { blocker.open(); }
};

/// The error code carried by a completion's exception_ptr (empty if none, or not a system_error).
inline boost::system::error_code code_of(const std::exception_ptr& e)
{
    try {
        if (e)
            std::rethrow_exception(e);
    } catch (const boost::system::system_error& se) {
        return se.code();
    } catch (...) {
    }
    return {};
}

/// Calls `f(dir)` with /proc/self/task/<tid> of each of this process's threads named `name`.
template <typename F>
void for_each_thread_named(const std::string& name, F f)
{
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string comm_name;
        std::getline(comm, comm_name);
        if (comm_name == name)
            f(task.path());
    }
}

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
