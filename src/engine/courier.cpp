// The pool's courier thread (see courier.hpp).
#include "courier.hpp"

#include <pthread.h>

#include <utility>

namespace asio_blocking::detail {

bool courier::start(std::function<void()> on_exit)
{
    try {
        thread_ = std::thread([this, on_exit = std::move(on_exit)] {
            pthread_setname_np(pthread_self(), "ab-courier");
            run();
            on_exit(); // may destroy this courier: nothing after it touches it
        });
    } catch (...) {
        return false;
    }
    head_.store(nullptr, std::memory_order_release); // open: hand_over() is taken from now on
    return true;
}

bool courier::hand_over(caller_registry* registry) noexcept
{
    caller_registry* old = head_.load(std::memory_order_relaxed);
    do {
        if (old == closed())
            return false;
        registry->courier_next_ = old;
    } while (!head_.compare_exchange_weak(old, registry, std::memory_order_seq_cst, std::memory_order_relaxed));
    // Pushed onto an empty stack: the thread may be asleep, or about to be (it reads `signal_`
    // before it looks at the stack, so a bump after its look ends its wait).
    if (old == nullptr) {
        signal_.fetch_add(1, std::memory_order_seq_cst);
        signal_.notify_one();
    }
    return true;
}

std::thread courier::stop() noexcept
{
    stopping_.store(true, std::memory_order_seq_cst);
    signal_.fetch_add(1, std::memory_order_seq_cst);
    signal_.notify_one();
    return std::move(thread_);
}

void courier::run()
{
    for (;;) {
        const std::uint32_t seen = signal_.load(std::memory_order_seq_cst);
        if (post_handed())
            continue;
        if (stopping_.load(std::memory_order_seq_cst)) {
            // Close only an empty stack: a batch pushed meanwhile is posted first.
            caller_registry* empty = nullptr;
            if (head_.compare_exchange_strong(empty, closed(), std::memory_order_seq_cst))
                return;
            continue;
        }
        signal_.wait(seen, std::memory_order_seq_cst);
    }
}

bool courier::post_handed()
{
    // Not while closed: the thread runs before start() opens the stack.
    caller_registry* stack = head_.load(std::memory_order_seq_cst);
    do {
        if (!stack || stack == closed())
            return false;
    } while (!head_.compare_exchange_weak(stack, nullptr, std::memory_order_seq_cst, std::memory_order_seq_cst));
    caller_registry* oldest_first = nullptr;
    while (stack)
        oldest_first = std::exchange(stack, std::exchange(stack->courier_next_, oldest_first));
    while (oldest_first)
        std::exchange(oldest_first, oldest_first->courier_next_)->post_handed_batch();
    return true;
}

} // namespace asio_blocking::detail
