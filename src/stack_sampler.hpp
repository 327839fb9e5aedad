// Samples another thread's stack with a signal, and symbolizes the sample off that thread.
#ifndef ASIO_BLOCKING_SRC_STACK_SAMPLER_HPP
#define ASIO_BLOCKING_SRC_STACK_SAMPLER_HPP

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace asio_blocking::detail {

/// Return addresses of one sampled stack, innermost first.
struct raw_stack {
    static constexpr std::size_t capacity = 64;
    std::uintptr_t frames[capacity];
    std::size_t size = 0;
};

enum class sample_result {
    captured,       ///< the thread is running the context; its stack is in the sample
    not_in_context, ///< the thread answered but is not inside the context's run()
    no_answer,      ///< the thread did not answer in time (signal blocked, or gone)
    unavailable,    ///< sampling is off: the signal is taken or disabled
};

/// Installs the sampling signal's handler on first use (never over an application's handler)
/// and returns true if sampling works in this process. Reports a taken signal on stderr once.
bool stack_sampling_available();

/// The signal used for sampling: SIGRTMIN + 7, or ASIO_BLOCKING_STALL_SIGNAL; 0 if disabled.
int stack_sampling_signal();

/// Interrupts thread `tid` and, if it is inside `ctx`'s run(), copies its stack into `out`.
/// Waits at most `timeout`, or until `cancelled` becomes true. Callable from any thread but
/// the sampled one; samples are taken one at a time process-wide.
sample_result sample_stack(pid_t tid, boost::asio::io_context& ctx, raw_stack& out,
                           std::chrono::steady_clock::duration timeout, const std::atomic<bool>& cancelled);

/// True if the innermost frame is in epoll_wait: a loop thread waiting for events. Cheap
/// (dladdr on the C library's exported names), for deciding before symbolizing.
bool waiting_in_epoll(const raw_stack& stack);

/// Starts a thread with every signal blocked, so that signals meant for the application are
/// delivered to its own threads, as a blocking_pool's workers do.
std::thread start_quiet_thread(std::function<void()> body);

/// Starts the process's symbolizing thread, which loads the debug information once (a few
/// hundred milliseconds) so that reports need not wait for it. Idempotent.
void start_symbolizer();

/// Names each frame ("function at file:line", demangled), innermost first, on the
/// symbolizing thread. False if `cancelled` became true first (`names` is then unchanged).
bool symbolize(const raw_stack& stack, std::vector<std::string>& names, const std::atomic<bool>& cancelled);

} // namespace asio_blocking::detail

#endif
