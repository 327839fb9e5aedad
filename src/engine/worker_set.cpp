// The pool's worker records: spawning threads, the idle stack (LIFO), the busy list, indices, retirement.
#include "worker_set.hpp"

#include <asio_blocking/detail/engine.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace asio_blocking::detail {

std::atomic<int> inject_thread_start_failures{0};

void worker_set::reserve()
{
    worker* w;
    if (spare_.empty()) {
        w = &records_.emplace_back();
        // So that reserved_record(), unreserve(), retire() and park() never need to allocate.
        spare_.reserve(records_.size());
        idle_.reserve(records_.size());
        reserved_.reserve(records_.size());
    } else {
        w = spare_.back();
        spare_.pop_back();
    }
    w->handoff = w->current = nullptr;
    w->parked = w->exit_requested = false;
    reserved_.push_back(w);
    ++starting_;
}

worker* worker_set::reserved_record() noexcept
{
    worker* w = reserved_.back();
    reserved_.pop_back();
    return w;
}

void worker_set::unreserve(worker* w) noexcept
{
    --starting_;
    spare_.push_back(w); // reserved by reserve(): push_back cannot need more room than it had
}

int worker_set::spawn(void* (*entry)(void*), void* arg, std::size_t stack_size) noexcept
{
    int expected = inject_thread_start_failures.load();
    while (expected > 0 && !inject_thread_start_failures.compare_exchange_weak(expected, expected - 1)) {
    }
    if (expected > 0)
        return EAGAIN;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (stack_size != 0)
        pthread_attr_setstacksize(&attr, std::max<std::size_t>(stack_size, PTHREAD_STACK_MIN));
    // Threads reclaim themselves when they exit: a long-lived pool keeps no stacks of threads
    // that have gone (join() waits for them through the engine's counts instead).
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // Workers block all signals, so they are delivered to the application's threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t handle;
    const int rc = pthread_create(&handle, &attr, entry, arg);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
    return rc;
}

std::size_t worker_set::started(worker* w)
{
    --starting_;
    ++threads_;
    auto free_slot = std::find(index_used_.begin(), index_used_.end(), false);
    w->index = static_cast<std::size_t>(free_slot - index_used_.begin());
    if (free_slot == index_used_.end())
        index_used_.push_back(true);
    else
        *free_slot = true;
    return w->index;
}

void worker_set::retire(worker* w) noexcept
{
    if (w->parked)
        unpark(w);
    if (w->exit_requested) {
        w->exit_requested = false;
        --leaving_;
    }
    --threads_;
    index_used_[w->index] = false;
    spare_.push_back(w); // cannot throw in practice: spare_ never holds more than records_
}

thread_activity worker_set::activity_of(pid_t tid) noexcept
{
    if (tid == 0)
        return thread_activity::unknown;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return thread_activity::unknown;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return thread_activity::unknown;
    buf[n] = '\0';
    // "tid (name) S ...": the state follows the last ')' (a name may contain one).
    const char* close_paren = std::strrchr(buf, ')');
    if (!close_paren || close_paren[1] != ' ')
        return thread_activity::unknown;
    switch (close_paren[2]) {
    case 'R':
        return thread_activity::runnable;
    case 'S':
    case 'D':
        return thread_activity::sleeping;
    default:
        return thread_activity::unknown;
    }
}

void worker_set::unpark(worker* w) noexcept
{
    idle_.erase(std::find(idle_.begin(), idle_.end(), w));
    w->parked = false;
    publish_idle();
}

void worker_set::ask_parked_to_leave(std::size_t keep) noexcept
{
    // Oldest-parked first; they leave the idle stack at once, so no call is handed to them.
    auto it = idle_.begin();
    while (it != idle_.end() && threads_ - leaving_ > keep) {
        worker* w = *it;
        it = idle_.erase(it);
        w->parked = false;
        w->exit_requested = true;
        ++leaving_;
        w->poked.store(true, std::memory_order_release);
        w->cv.notify_one();
    }
    publish_idle();
}

void worker_set::recall_leaving(std::size_t keep) noexcept
{
    for (worker& w : records_) {
        if (threads_ - leaving_ >= keep)
            return;
        if (w.exit_requested) { // told to leave, and (not retired yet) still waiting to
            w.exit_requested = false;
            --leaving_;
            park(&w);
        }
    }
}

void worker_set::wake_all_parked() noexcept
{
    for (worker* w : idle_) {
        w->poked.store(true, std::memory_order_release);
        w->cv.notify_one();
    }
}

void worker_set::begin_call(worker* w, operation* op, steady_time now) noexcept
{
    w->current = op;
    w->since = now;
    w->busy_next = nullptr;
    w->busy_prev = busy_tail_;
    (busy_tail_ ? busy_tail_->busy_next : busy_head_) = w;
    busy_tail_ = w;
    ++busy_;
}

void worker_set::end_call(worker* w) noexcept
{
    (w->busy_prev ? w->busy_prev->busy_next : busy_head_) = w->busy_next;
    (w->busy_next ? w->busy_next->busy_prev : busy_tail_) = w->busy_prev;
    w->busy_next = w->busy_prev = nullptr;
    w->current = nullptr;
    --busy_;
}

} // namespace asio_blocking::detail
