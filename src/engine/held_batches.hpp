// The batches of finished calls one worker owes a post: while its calls take about a microsecond,
// a loop's batch waits for a few more of the worker's deliveries, so the loop wakes once per
// several results instead of once per result.
#ifndef ASIO_BLOCKING_SRC_ENGINE_HELD_BATCHES_HPP
#define ASIO_BLOCKING_SRC_ENGINE_HELD_BATCHES_HPP

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>

namespace asio_blocking::detail {

class caller_registry;

/**
 * Why: each post to a sleeping loop wakes it (a futex wake and two context switches). A worker
 * finishing tiny calls for several loops would wake each of them every few calls; where a loop
 * shares the worker's CPU, each wake-up preempts the worker, and the pool's rate halves. Held
 * for a few deliveries, a batch collects the results that follow it.
 *
 * Bounds on how long a result waits for its post:
 * - `deliveries_for()` of the worker's own deliveries, which fit in `hold_budget` at the rate the
 *   worker has been finishing calls (none while calls take `hold_budget / 2` or longer);
 * - none once the worker runs out of work: it posts every held batch before it goes idle;
 * - `wait_behind_call` if a call turns out to be long: the monitor takes the held batches of a
 *   worker whose call started that long ago, and posts them.
 *
 * Each slot is taken by one exchange, so the worker and the monitor never post one batch twice.
 * A held batch keeps its registry's `sending_` count (the context's shutdown waits for the post)
 * and a reference, as a batch handed to the courier does.
 */
class held_batches {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t slots = 8;
    static constexpr std::size_t max_deliveries = 64;
    static constexpr clock::duration hold_budget = std::chrono::microseconds(20);
    static constexpr clock::duration wait_behind_call = std::chrono::milliseconds(1);

    /// How many deliveries a batch may wait for when calls take `per_call` each (0: post at once;
    /// also while that is not known yet, zero).
    static constexpr std::size_t deliveries_for(clock::duration per_call) noexcept
    {
        if (per_call <= clock::duration::zero())
            return 0;
        const auto n = static_cast<std::size_t>(hold_budget / per_call);
        return n < 2 ? 0 : (n < max_deliveries ? n : max_deliveries);
    }

    /// Worker: counts one delivery (towards the limit of the batches held).
    void delivered() noexcept { ++deliveries_; }

    /// Worker, under the engine's lock as a call starts: `looks` counts the monitor's looks at
    /// held batches (see hold()).
    void call_started(const std::atomic<unsigned>& looks) noexcept
    {
        looks_at_start_ = looks.load(std::memory_order_relaxed);
    }

    /// Worker: holds `registry`'s batch; false if every slot is taken, or if the monitor has
    /// looked since the call started (`looks`, as given to call_started): post it yourself.
    bool hold(caller_registry* registry, const std::atomic<unsigned>& looks) noexcept
    {
        for (std::size_t i = 0; i < slots; ++i) {
            if (slot_[i].load(std::memory_order_relaxed) == nullptr) {
                held_at_[i] = deliveries_;
                slot_[i].store(registry, std::memory_order_seq_cst);
                // The monitor counts a look before it reads the slots: it sees this batch, or this
                // sees its look. A look since the call started may have found nothing held and not
                // come back (the call may be long, or started longer ago than it seems): take the
                // batch back, unless the monitor has taken it.
                if (looks.load(std::memory_order_seq_cst) != looks_at_start_)
                    return slot_[i].exchange(nullptr, std::memory_order_acq_rel) != registry;
                return true;
            }
        }
        return false;
    }

    /// Worker: takes a batch held for `limit` deliveries or more; nullptr if none.
    caller_registry* take_due(std::size_t limit) noexcept
    {
        for (std::size_t i = 0; i < slots; ++i) {
            if (deliveries_ - held_at_[i] >= limit && slot_[i].load(std::memory_order_relaxed) != nullptr) {
                if (caller_registry* r = slot_[i].exchange(nullptr, std::memory_order_acq_rel))
                    return r;
            }
        }
        return nullptr;
    }

    /// Any thread: takes one held batch; nullptr if none.
    caller_registry* take_any() noexcept
    {
        for (auto& s : slot_) {
            if (s.load(std::memory_order_relaxed) != nullptr) {
                if (caller_registry* r = s.exchange(nullptr, std::memory_order_acq_rel))
                    return r;
            }
        }
        return nullptr;
    }

    /// Any thread: some batch is held (a hint: the worker may take it meanwhile).
    bool any() const noexcept
    {
        for (const auto& s : slot_)
            if (s.load(std::memory_order_relaxed) != nullptr)
                return true;
        return false;
    }

private:
    std::array<std::atomic<caller_registry*>, slots> slot_{};
    // The worker's own: its delivery count, and the count when each slot's batch was held; the
    // monitor's looks, and their count when the current call started.
    std::size_t deliveries_ = 0;
    std::array<std::size_t, slots> held_at_{};
    unsigned looks_at_start_ = 0;
};

} // namespace asio_blocking::detail

#endif
