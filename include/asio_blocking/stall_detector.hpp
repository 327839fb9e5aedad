// stall_detector: reports handlers that block an io_context's event loop, with their stacks.
#ifndef ASIO_BLOCKING_STALL_DETECTOR_HPP
#define ASIO_BLOCKING_STALL_DETECTOR_HPP

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace asio_blocking {
namespace detail {
struct stall_detector_probe;
}

/// One report of a stalled event loop: which thread, for how long so far, and what it runs.
struct stall_report {
    /// How long the loop had been stalled when this report was made.
    std::chrono::steady_clock::duration duration;
    /// The stalled thread, as /proc/self/task/*/comm shows it.
    std::string thread_name;
    /// Symbolized, demangled frames, innermost first; empty if not captured.
    std::vector<std::string> stack;
};

/// Options of a `stall_detector`. An aggregate: use designated initializers.
struct stall_options {
    /// A loop unable to run a handler for this long is stalled. Must be positive.
    std::chrono::steady_clock::duration threshold = std::chrono::milliseconds(50);
    /// Sample the stalled thread's stack (with a signal; see the README) for each report.
    bool capture_stack = true;
    /// Called on the detector's own thread for each report; empty: a short report to stderr.
    std::function<void(const stall_report&)> on_stall;
};

/// Watches an `io_context` and reports each stretch of at least `threshold` during which its
/// loop could not run a handler because a handler was still running.
/**
 * A heartbeat timer runs on the loop every `threshold / 2`; a thread of the detector's own
 * checks that it keeps running, and when it does not, samples the stacks of the threads
 * running the loop. The heartbeat does not count as outstanding work: `run()` returns when
 * the application's own work is done. Destroy the detector before its `io_context`.
 *
 * Reports are made when a stall reaches `threshold` and again each time its duration doubles.
 * An idle loop, a stopped context, or one never run is never stalled.
 */
class stall_detector {
public:
    /// Starts watching `ctx`. Throws `std::invalid_argument` if `threshold` is not positive.
    explicit stall_detector(boost::asio::io_context& ctx, stall_options options = {});
    /// Stops watching; returns promptly, even during a stall (after a report in progress).
    /// No report is made after it returns.
    ~stall_detector();
    stall_detector(const stall_detector&) = delete;
    stall_detector& operator=(const stall_detector&) = delete;

    /// Distinct stalls seen so far (each counted once, however often it was reported).
    std::uint64_t stalls() const noexcept;
    /// The longest stall that has ended so far.
    std::chrono::steady_clock::duration longest_stall() const noexcept;

private:
    friend struct detail::stall_detector_probe; // the tests' view of which threads are watched
    class watcher;
    std::unique_ptr<watcher> watcher_;
};

} // namespace asio_blocking

#endif
