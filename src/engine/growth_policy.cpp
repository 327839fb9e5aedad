// How many threads a pool should start now: a pure function of a snapshot of its state.
#include "growth_policy.hpp"

#include <algorithm>

namespace asio_blocking::detail {

unsigned growth_policy::next_slow_share(unsigned slow_share, std::uint64_t finished_before,
                                        std::chrono::steady_clock::duration run_time) noexcept
{
    const unsigned sample = run_time >= slow_call ? 256 : 0;
    if (finished_before == 0)
        return sample;
    return slow_share - slow_share / 8 + sample / 8;
}

growth_decision decide_growth(const growth_snapshot& s) noexcept
{
    using namespace growth_policy;
    using duration = std::chrono::steady_clock::duration;
    const std::size_t total = s.threads + s.starting;
    if (total >= s.max_threads)
        // At a lowered OS cap, a backlog is looked at again when the cap lifts.
        return {0, s.queued > 0 && s.busy >= s.threads ? s.cap_lifts_after : duration::max()};
    const bool backing_off = s.since_start_failure < start_failure_backoff;
    const auto backoff_left = backing_off ? start_failure_backoff - s.since_start_failure : duration::max();
    // Up to min_threads at once, unless a start just failed: then after the back-off.
    if (total < s.min_threads && !backing_off)
        return {s.min_threads - total};
    // A worker is free (between calls), or the threads on their way will take the backlog.
    if (s.queued <= s.starting || s.busy < s.threads)
        return {0, total < s.min_threads ? backoff_left : duration::max()};
    if (total == 0)
        return {1}; // a call with no thread at all: always one, back-off or not
    if (backing_off)
        return {0, backoff_left};

    // Blocking calls: most recent ones were slow, or (none finished yet) the oldest has already
    // run that long, asleep. A stall: a call has run that long, asleep. A thread that is merely
    // runnable is computing or preempted (a loaded machine): another thread would only contend.
    const bool asleep = s.oldest_activity == thread_activity::sleeping;
    const bool blocking =
        s.finished_calls > 0 ? s.slow_share >= slow_majority : s.oldest_running >= slow_call && asleep;
    const bool stalled = s.oldest_running >= stall && asleep;
    if (!blocking && !stalled) {
        // Look again once the oldest call could count as blocking (or stalled); if it already
        // could, the monitor looks at its thread now, and again a little later while it stays
        // runnable rather than asleep.
        const auto due = s.finished_calls > 0 ? stall : slow_call;
        if (s.oldest_running < due)
            return {0, due - s.oldest_running};
        return {0, s.asker == growth_asker::monitor ? activity_poll : std::chrono::steady_clock::duration(1us)};
    }
    // Slow calls gain from more threads only while they wait rather than compute. With CPU figures:
    // never more once the running calls want every CPU the pool may use; while every one of them
    // computes, one thread per CPU still spare (no tree: the next calls are likely the same);
    // while some wait, grow as below. Without figures, slow calls not seen asleep wait for the
    // monitor's next sample rather than start threads that may only take turns on the CPUs.
    if (s.running_cpus >= 0 && s.cpu_limit > 0) {
        if (s.running_cpus >= s.cpu_limit - cpu_full_margin)
            return {0, cpu_sample_period};
        if (s.cpu_bound_running >= s.busy) {
            const auto spare = static_cast<std::size_t>(s.cpu_limit - s.running_cpus + cpu_full_margin);
            if (s.starting >= spare)
                return {0, cpu_sample_period};
            return {std::min({spare - s.starting, s.max_threads - total, s.queued - s.starting})};
        }
    } else if (s.cpu_limit > 0 && !asleep) {
        return {0, cpu_sample_period};
    }
    // Tiny calls grow one thread at a time, and so do blocking ones except through new
    // workers: each starts two once it has a call (a tree), while submissions, a burst of
    // which would otherwise start concurrent_starts threads for one preempted call, wait.
    if (s.starting > 0 && (!blocking || s.asker != growth_asker::worker || s.starting >= concurrent_starts))
        return {};
    const std::size_t wanted = s.asker == growth_asker::worker && blocking ? 2 : 1;
    const std::size_t room = std::min(
        {s.max_threads - total, concurrent_starts - std::min(s.starting, concurrent_starts), s.queued - s.starting});
    return {std::min(wanted, room)};
}

} // namespace asio_blocking::detail
