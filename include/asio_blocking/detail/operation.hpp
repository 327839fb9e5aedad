// The type-erased unit of work the engine queues and runs; knows nothing of handlers.
#ifndef ASIO_BLOCKING_DETAIL_OPERATION_HPP
#define ASIO_BLOCKING_DETAIL_OPERATION_HPP

#include <asio_blocking/priority.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <stop_token>

namespace asio_blocking::detail {

/// Where an operation is, as far as the engine knows. Guarded by the engine's mutex.
enum class op_place : unsigned char {
    none,      // not yet submitted, or finished
    inbox,     // submitted without the lock, not yet collected into the queue
    lane,      // held back by its lane's concurrency limit
    admission, // waiting for room in a full queue
    queued,    // waiting for a worker
    running,   // handed to a worker
    abandoned, // running, but its caller has already been completed (cancelled)
};

/// What kind of submission an operation is; decides how a full or stopped pool treats it.
enum class op_kind : unsigned char {
    /// A plain `post`/`execute`: blocks its poster while the queue is full.
    plain,
    /// The same, through a work-tracking executor: it continues work already counted, so a
    /// draining pool still accepts it.
    tracked,
    /// An `async_blocking` call: waits for room asynchronously (in the admission FIFO).
    async_call,
    /// A completion handed to a handler that runs on this pool: accepted after stop() while
    /// threads remain to run it, and never held back by the queue's capacity.
    completion,
};

/// What `complete()` saw of the caller it handed the result to.
enum class caller_pending : unsigned char {
    /// Other calls of the caller's context are still pending, or there is no such caller.
    others_or_unknown,
    /// None: the caller may well submit its next call as soon as this handler has run.
    none,
};

/// Base of everything the engine runs: `post`ed functions and `async_blocking` calls.
/**
 * The engine calls exactly one of:
 * - `run()` on a worker, then `complete()` once it has done its bookkeeping; or
 * - `abort(error)` when the operation leaves the engine without running (cancelled, stopped,
 *   expired, refused).
 * Either path releases the engine's interest in the operation; the operation frees itself when
 * no one else (its caller's completion) still needs it. The engine never touches an operation
 * after handing it to `complete()` or `abort()`.
 *
 * Only what every queued call needs lives here (links, place, priority); a queue deadline is
 * kept by the engine's deadline set, and a stop source only by operations whose fn takes one.
 */
class operation {
public:
    enum class outcome : unsigned char {
        returned, // fn ran and returned
        threw,    // fn ran and threw
        skipped,  // fn did not run: the caller was already completed (cancelled or gone)
    };

    virtual outcome run() noexcept = 0;
    virtual caller_pending complete() noexcept = 0;
    virtual void abort(std::exception_ptr error) noexcept = 0;
    /// The stop source stop() and cancellation request stop on; none unless fn takes a token.
    virtual std::stop_source stop_source() const noexcept { return std::stop_source(std::nostopstate); }

    operation() = default;
    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;

    // Everything below is the engine's bookkeeping, guarded by the engine's mutex (or written
    // before the op is submitted, when no other thread knows it yet).
    operation* next_ = nullptr;
    operation* prev_ = nullptr;
    op_place place_ = op_place::none;
    // One byte, and so one memory location: its writers must be serialised as above, never
    // one under the lock and another outside it.
    priority priority_ : 2 = priority::normal;
    op_kind kind_ : 2 = op_kind::plain;
    /// In the engine's deadline set (a queue timeout was given).
    bool has_deadline_ : 1 = false;
    /// The call's lane: its 1-based index in the pool's lane gate; 0 for none. An index, not
    /// a pointer, so it fits beside the flags (a queued call is 8 bytes smaller).
    std::uint16_t lane_ = 0;

protected:
    ~operation() = default;
};

static_assert(static_cast<unsigned>(priority::high) < (1u << 2) &&
                  static_cast<unsigned>(op_kind::completion) < (1u << 2),
              "operation's flag bits must hold every value");

/// An intrusive FIFO of operations, linked through `next_`/`prev_`; O(1) removal anywhere.
class op_list {
public:
    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }
    operation* front() const noexcept { return head_; }

    void push_back(operation* op) noexcept
    {
        op->next_ = nullptr;
        op->prev_ = tail_;
        if (tail_)
            tail_->next_ = op;
        else
            head_ = op;
        tail_ = op;
        ++size_;
    }

    operation* pop_front() noexcept
    {
        operation* op = head_;
        if (op)
            erase(op);
        return op;
    }

    void erase(operation* op) noexcept
    {
        (op->prev_ ? op->prev_->next_ : head_) = op->next_;
        (op->next_ ? op->next_->prev_ : tail_) = op->prev_;
        op->next_ = op->prev_ = nullptr;
        --size_;
    }

    /// Moves every element of `other` to the back of this list.
    void splice_back(op_list& other) noexcept
    {
        if (other.empty())
            return;
        if (tail_) {
            tail_->next_ = other.head_;
            other.head_->prev_ = tail_;
        } else {
            head_ = other.head_;
        }
        tail_ = other.tail_;
        size_ += other.size_;
        other.head_ = other.tail_ = nullptr;
        other.size_ = 0;
    }

private:
    operation* head_ = nullptr;
    operation* tail_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace asio_blocking::detail

#endif
