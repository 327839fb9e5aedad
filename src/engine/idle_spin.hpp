// Whether a worker that has just handed back a result polls briefly for the caller's next call
// before it sleeps, and the polling itself.
#ifndef ASIO_BLOCKING_SRC_ENGINE_IDLE_SPIN_HPP
#define ASIO_BLOCKING_SRC_ENGINE_IDLE_SPIN_HPP

#include <algorithm>
#include <atomic>
#include <chrono>

namespace asio_blocking::detail {

/**
 * A caller awaiting a result usually submits its next call as soon as its handler has run. A
 * worker that sleeps at once must be woken for it (a futex wake, ~20 µs on a VM); one that polls
 * meanwhile takes the call at once, often before the caller's loop has even gone to sleep, so
 * neither side pays a wake-up. Polling burns a CPU, so it is rationed:
 * - only after handing back a result (a caller is about to run) and only in the normal class
 *   (the coordinator's conditions);
 * - at most `limit` per idle moment, and one spinning worker per two CPUs in the whole process
 *   (none with one CPU: the caller needs it);
 * - a spin that finds nothing makes the next ones rarer: it skips the next 1, 2, 4 ... `max_skip`
 *   chances; one that finds work restores every chance.
 * So a pool whose callers do not come back quickly spins at most once per `max_skip` + 1 idle
 * moments. One per pool, guarded by the engine's mutex (except poll()).
 */
class idle_spin {
public:
    using clock = std::chrono::steady_clock;
    /// Long enough for a caller woken by its result to run the handler and submit again, even
    /// where a wake-up costs ~20 µs (a VM's idle vCPU); short enough to cost little when it does not.
    static constexpr std::chrono::microseconds limit{50};
    static constexpr unsigned max_skip = 64;

    /// Workers spinning now, in every pool of the process.
    static inline std::atomic<unsigned> process_spinners{0};

    /// `cpus`: the CPUs the process may use (affinity and cgroup quota); `spinners`: the count
    /// shared with the other pools.
    explicit idle_spin(double cpus, std::atomic<unsigned>& spinners = process_spinners) noexcept
        : spinners_(spinners)
        , max_spinners_(static_cast<unsigned>(cpus / 2))
    {
    }

    /// Under the lock, when a worker that has just handed back a result finds no work: whether
    /// it spins now. If true, end_locked() must follow.
    bool try_begin_locked() noexcept
    {
        if (skip_ > 0) {
            --skip_;
            return false;
        }
        unsigned n = spinners_.load(std::memory_order_relaxed);
        do {
            if (n >= max_spinners_)
                return false;
        } while (!spinners_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
        return true;
    }

    /// Under the lock: the spin that try_begin_locked() allowed ended; `found_work` if it did.
    void end_locked(bool found_work) noexcept
    {
        spinners_.fetch_sub(1, std::memory_order_relaxed);
        backoff_ = found_work ? 0 : std::clamp(backoff_ * 2, 1u, max_skip);
        skip_ = backoff_;
    }

    /// Without the lock: polls `poked` until it is set or `limit` has passed; whether it was set.
    static bool poll(const std::atomic<bool>& poked) noexcept
    {
        const clock::time_point until = clock::now() + limit;
        for (unsigned i = 1;; ++i) {
            if (poked.load(std::memory_order_acquire))
                return true;
            relax();
            // A clock read every 64 pauses: about every microsecond or two.
            if (i % 64 == 0 && clock::now() >= until)
                return false;
        }
    }

private:
    static void relax() noexcept
    {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }

    std::atomic<unsigned>& spinners_;
    unsigned max_spinners_;
    unsigned backoff_ = 0; // chances skipped after the last fruitless spin
    unsigned skip_ = 0;    // chances still to skip
};

} // namespace asio_blocking::detail

#endif
