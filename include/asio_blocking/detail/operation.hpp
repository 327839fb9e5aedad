// The type-erased unit of work the pool core queues and runs; knows nothing of handlers.
#ifndef ASIO_BLOCKING_DETAIL_OPERATION_HPP
#define ASIO_BLOCKING_DETAIL_OPERATION_HPP

#include <asio_blocking/priority.hpp>

#include <chrono>
#include <exception>
#include <stop_token>

namespace asio_blocking::detail {

class lane_core;

/// Where an operation is, as far as the core knows. Guarded by the core's mutex.
enum class op_place : unsigned char {
    none,      // not yet submitted, or finished
    lane,      // held back by its lane's concurrency limit
    admission, // waiting for room in a full queue
    queued,    // waiting for a worker
    running,   // handed to a worker
    abandoned, // running, but its caller has already been completed (cancelled)
};

/// Who submits an operation: decides whether a draining or stopped pool takes it.
enum class submission_origin : unsigned char {
    call,       // async_blocking, or a function posted through an untracked executor
    tracked,    // a function posted through a work-tracking executor: continues counted work
    completion, // an async_blocking completion for a handler bound to the pool: accepted after
                // stop() while threads remain, never held back by the queue's capacity
};

/// Base of everything the core runs: `post`ed functions and `async_blocking` calls.
/**
 * The core calls exactly one of:
 * - `run()` on a worker, then `complete()` once it has done its bookkeeping; or
 * - `abort(error)` when the operation leaves the core without running (cancelled, stopped,
 *   expired, refused).
 * Either path releases the core's interest in the operation; the operation frees itself when
 * no one else (its caller's completion) still needs it. The core never touches an operation
 * after handing it to `complete()` or `abort()`.
 */
class operation {
public:
    enum class outcome : unsigned char {
        returned, // fn ran and returned
        threw,    // fn ran and threw
        skipped,  // fn did not run: the caller was already completed (cancelled or gone)
    };

    virtual outcome run() noexcept = 0;
    virtual void complete() noexcept = 0;
    virtual void abort(std::exception_ptr error) noexcept = 0;

    operation() = default;
    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;

    // Everything below is the core's bookkeeping, guarded by the core's mutex.
    operation* next_ = nullptr;
    operation* prev_ = nullptr;
    /// Submission time while waiting; start time while running.
    std::chrono::steady_clock::time_point stamp_{};
    /// Latest start; max() for none.
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    lane_core* lane_ = nullptr;
    /// Empty unless fn accepts a std::stop_token; the core requests stop on it.
    std::stop_source stop_source_{std::nostopstate};
    op_place place_ = op_place::none;
    priority priority_ = priority::normal;
    /// May wait asynchronously for room in a full queue (async_blocking may; post may not).
    bool can_wait_for_room_ = false;
    submission_origin origin_ = submission_origin::call;

protected:
    ~operation() = default;
};

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
