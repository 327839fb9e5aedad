// When a worker reads the clock around its calls: every call while calls may be slow; one call in
// `sampling` while they take microseconds, so that tiny calls do not pay a clock read each.
#ifndef ASIO_BLOCKING_SRC_ENGINE_CALL_TIMER_HPP
#define ASIO_BLOCKING_SRC_ENGINE_CALL_TIMER_HPP

#include <chrono>
#include <optional>

namespace asio_blocking::detail {

/**
 * One worker's. A timed call's run time is exact (the previous reading starts it, a reading after
 * it ends it). Untimed calls start at the last reading, at most `sampling` tiny calls old, which
 * is all the stall check needs. A window of untimed calls that took `slow` or longer in all means
 * one of them may have blocked: every call is timed again until `tiny_calls_to_sample` timed calls
 * in a row are tiny. So a backlog turning slow is timed again within `sampling` calls.
 */
class call_timer {
public:
    using clock = std::chrono::steady_clock;
    static constexpr unsigned sampling = 16;
    static constexpr unsigned tiny_calls_to_sample = 64;

    call_timer(clock::time_point now, clock::duration slow) noexcept
        : start_(now)
        , slow_(slow)
    {
    }

    /// Start of the next call as far as is known: the last reading.
    clock::time_point last_reading() const noexcept { return start_; }

    /// The last `tiny_calls_to_sample` timed calls (at least) all took less than `slow`.
    bool calls_are_tiny() const noexcept { return tiny_streak_ >= tiny_calls_to_sample; }

    /// The mean time per call over the last window of untimed calls (zero before the first):
    /// what a tiny call costs the worker, its bookkeeping and hand-back included.
    clock::duration per_call() const noexcept { return per_call_; }

    /// The clock was read for another reason (the worker idled): calls start from `now`.
    void restart(clock::time_point now) noexcept
    {
        start_ = now;
        since_reading_ = 0;
    }

    /// Called after each call; reads the clock with `read()` only when due. Returns the call's
    /// run time if it was timed.
    template <typename Read>
    std::optional<clock::duration> call_ended(Read&& read)
    {
        if (timing_) {
            const clock::time_point end = read();
            const clock::duration ran = end - start_;
            start_ = end;
            since_reading_ = 0;
            if (ran >= slow_)
                tiny_streak_ = 0;
            else if (tiny_streak_ < tiny_calls_to_sample)
                ++tiny_streak_;
            timing_ = tiny_streak_ < tiny_calls_to_sample;
            untimed_left_ = sampling - 1;
            return ran;
        }
        if (--untimed_left_ != 0) {
            ++since_reading_;
        } else {
            // The next call is timed: this reading starts it, and ends the window.
            const clock::time_point now = read();
            if (now - start_ >= slow_)
                tiny_streak_ = 0;
            per_call_ = (now - start_) / (since_reading_ + 1);
            start_ = now;
            since_reading_ = 0;
            timing_ = true;
        }
        return std::nullopt;
    }

private:
    clock::time_point start_;
    clock::duration slow_;
    clock::duration per_call_{};
    unsigned since_reading_ = 0; // calls ended since start_ was read
    unsigned tiny_streak_ = 0;   // timed calls in a row that took less than slow_
    unsigned untimed_left_ = 0;  // untimed calls before the next timed one
    bool timing_ = true;
};

} // namespace asio_blocking::detail

#endif
