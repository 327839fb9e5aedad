// Plain calls submitted without the engine's lock: a lock-free stack the coordinator empties
// into its queue, oldest first, under its lock.
#ifndef ASIO_BLOCKING_SRC_ENGINE_SUBMISSION_INBOX_HPP
#define ASIO_BLOCKING_SRC_ENGINE_SUBMISSION_INBOX_HPP

#include <asio_blocking/detail/operation.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace asio_blocking::detail {

/**
 * Many submitters push (one CAS each, linking through `operation::next_`); the coordinator takes
 * everything at once (one exchange), so a stream of calls contends on one cache line per batch
 * instead of on the engine's mutex per call. Taking everything at once means no ABA: a pushed
 * node is never popped alone. Once closed (stop, join) it refuses pushes for good.
 *
 * push() and empty() are sequentially consistent: with the coordinator's flags they form the
 * store-then-load pairs that keep a pushed call from going unnoticed (see coordinator::submit).
 */
class submission_inbox {
public:
    /// Adds `op`; false (op untouched) once closed.
    bool push(operation* op) noexcept
    {
        operation* head = head_.load(std::memory_order_relaxed);
        do {
            if (head == closed())
                return false;
            op->next_ = head;
        } while (!head_.compare_exchange_weak(head, op, std::memory_order_seq_cst, std::memory_order_relaxed));
        return true;
    }

    bool empty() const noexcept
    {
        operation* head = head_.load(std::memory_order_seq_cst);
        return head == nullptr || head == closed();
    }

    /// Moves every pushed call to the back of `out`, oldest first; returns how many.
    std::size_t take_all(op_list& out) noexcept { return take(out, nullptr); }

    /// As take_all(), and refuses every later push.
    std::size_t close(op_list& out) noexcept { return take(out, closed()); }

private:
    static operation* closed() noexcept { return reinterpret_cast<operation*>(std::uintptr_t{1}); }

    // Called under the coordinator's lock, so take() never races another take() or close():
    // pushers only ever replace a list with a longer one.
    std::size_t take(op_list& out, operation* leave) noexcept
    {
        // Sequentially consistent, like empty(): this load is the second half of the closer's or
        // parked worker's store-then-load pair; a relaxed one may miss a push whose submitter in
        // turn missed the store, stranding the call (C++ allows it; x86 hides it, ARM does not).
        const operation* head = head_.load(std::memory_order_seq_cst);
        if (head == closed() || (head == nullptr && leave == nullptr))
            return 0;
        operation* newest = head_.exchange(leave, std::memory_order_acquire);
        // The stack is newest first: reverse it.
        operation* oldest = nullptr;
        std::size_t n = 0;
        while (newest) {
            operation* next = newest->next_;
            newest->next_ = oldest;
            oldest = newest;
            newest = next;
            ++n;
        }
        while (oldest) {
            operation* next = oldest->next_;
            out.push_back(oldest);
            oldest = next;
        }
        return n;
    }

    std::atomic<operation*> head_{nullptr};
};

} // namespace asio_blocking::detail

#endif
