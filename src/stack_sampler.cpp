// Samples another thread's stack with a signal, and symbolizes the sample off that thread.
//
// The requesting thread fills the one process-wide request slot and sends the signal to the
// target thread with tgkill. The handler, on the target, claims the slot, checks that the
// thread is inside the io_context's run() (Asio's per-thread call stack, a plain read of a
// thread-local list), and walks its own stack with _Unwind_Backtrace into the slot's fixed
// array: no allocation, no lock. libgcc's unwinder finds unwind tables through glibc's
// _dl_find_object (GCC 12, glibc 2.35+), which takes no lock, so interrupting a thread in the
// middle of dlopen or of another unwind cannot deadlock it. The requester then symbolizes
// (Boost.Stacktrace with libbacktrace, which reads the debug information) on its own thread.
#include "stack_sampler.hpp"

// Use the compiled Boost.Stacktrace library linked in (the libbacktrace backend), not the header-only default.
#define BOOST_STACKTRACE_LINK
#include <boost/stacktrace/frame.hpp>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dlfcn.h>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <unistd.h>
#include <unwind.h>

namespace asio_blocking::detail {
namespace {

enum slot_state : int { idle, requested, capturing, done };

// The one request in flight. Everything but `state` is written by one side while it owns the
// slot (the requester before `requested`, the handler between `capturing` and `done`).
struct request_slot {
    std::atomic<int> state{idle};
    std::atomic<pid_t> tid{0};
    std::atomic<boost::asio::io_context*> ctx{nullptr};
    bool in_context = false;
    raw_stack stack;
    // Index of the interrupted frame (the first one below the signal trampoline).
    std::size_t first = 0;
    bool found_signal_frame = false;
};

request_slot slot;
std::mutex requests; // one request at a time, process-wide

_Unwind_Reason_Code collect_frame(_Unwind_Context* context, void*)
{
    if (slot.stack.size == raw_stack::capacity)
        return _URC_END_OF_STACK;
    int is_signal_frame = 0;
    std::uintptr_t ip = _Unwind_GetIPInfo(context, &is_signal_frame);
    if (ip == 0)
        return _URC_END_OF_STACK;
    // The interrupted frame's IP is the exact instruction; every other frame's is a return
    // address, one past its call. The first signal frame marks where the handler's own frames end.
    if (is_signal_frame && !slot.found_signal_frame) {
        slot.found_signal_frame = true;
        slot.first = slot.stack.size;
    }
    slot.stack.frames[slot.stack.size++] = is_signal_frame ? ip : ip - 1;
    return _URC_NO_REASON;
}

extern "C" void on_sample_signal(int, siginfo_t*, void*)
{
    int saved_errno = errno;
    int expected = requested;
    if (slot.tid.load(std::memory_order_acquire) == gettid() &&
        slot.state.compare_exchange_strong(expected, capturing, std::memory_order_acq_rel)) {
        boost::asio::io_context* ctx = slot.ctx.load(std::memory_order_relaxed);
        slot.in_context = ctx->get_executor().running_in_this_thread();
        slot.stack.size = 0;
        slot.first = 0;
        slot.found_signal_frame = false;
        if (slot.in_context)
            _Unwind_Backtrace(&collect_frame, nullptr);
        slot.state.store(done, std::memory_order_release);
    }
    errno = saved_errno;
}

// ASIO_BLOCKING_STALL_SIGNAL: a signal number, "SIGRTMIN+N" or "RTMIN+N", or "0"/"off" to
// disable sampling. Default SIGRTMIN+7: glibc keeps the first real-time signals below
// SIGRTMIN for itself, and libraries that take real-time signals usually start at SIGRTMIN.
int choose_signal()
{
    const char* env = std::getenv("ASIO_BLOCKING_STALL_SIGNAL");
    if (env == nullptr || *env == '\0')
        return SIGRTMIN + 7;
    if (std::strcmp(env, "off") == 0 || std::strcmp(env, "none") == 0)
        return 0;
    const char* number = env;
    int base = 0;
    if (std::strncmp(env, "SIGRTMIN", 8) == 0 || std::strncmp(env, "RTMIN", 5) == 0) {
        number = env + (env[0] == 'S' ? 8 : 5);
        base = SIGRTMIN;
        if (*number == '+')
            ++number;
        else if (*number != '\0') {
            number = "invalid";
        }
    }
    char* end = nullptr;
    long n = *number == '\0' ? 0 : std::strtol(number, &end, 10);
    if ((end != nullptr && *end != '\0') || n < 0 || base + n > SIGRTMAX || (base == 0 && n > SIGRTMAX)) {
        std::fprintf(stderr,
                     "asio_blocking: ASIO_BLOCKING_STALL_SIGNAL=%s is not a signal; stall stacks not captured\n", env);
        return 0;
    }
    return static_cast<int>(base + n);
}

struct installation {
    int signal = 0;
    bool installed = false;
};

const installation& install_once()
{
    static const installation result = [] {
        installation r;
        r.signal = choose_signal();
        if (r.signal == 0)
            return r;
        struct sigaction current;
        if (sigaction(r.signal, nullptr, &current) != 0)
            return r;
        bool taken = (current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL;
        if (taken) {
            std::fprintf(stderr,
                         "asio_blocking: signal %d already has a handler; stall stacks not captured "
                         "(choose another with ASIO_BLOCKING_STALL_SIGNAL)\n",
                         r.signal);
            return r;
        }
        struct sigaction action {};
        action.sa_sigaction = &on_sample_signal;
        action.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&action.sa_mask);
        if (sigaction(r.signal, &action, nullptr) != 0)
            return r;
        // Load and bind the unwinder now, not in the first signal handler that needs it.
        _Unwind_Backtrace([](_Unwind_Context*, void*) { return _URC_END_OF_STACK; }, nullptr);
        r.installed = true;
        return r;
    }();
    return result;
}

} // namespace

bool stack_sampling_available()
{
    return install_once().installed;
}

int stack_sampling_signal()
{
    return install_once().signal;
}

sample_result sample_stack(pid_t tid, boost::asio::io_context& ctx, raw_stack& out,
                           std::chrono::steady_clock::duration timeout, const std::atomic<bool>& cancelled)
{
    if (!stack_sampling_available())
        return sample_result::unavailable;
    std::lock_guard<std::mutex> lock(requests);
    slot.ctx.store(&ctx, std::memory_order_relaxed);
    slot.tid.store(tid, std::memory_order_relaxed);
    slot.state.store(requested, std::memory_order_release);
    if (tgkill(getpid(), tid, install_once().signal) != 0) {
        slot.state.store(idle, std::memory_order_relaxed);
        return sample_result::no_answer;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int state = slot.state.load(std::memory_order_acquire);
        if (state == done)
            break;
        if (state == requested &&
            (cancelled.load(std::memory_order_relaxed) || std::chrono::steady_clock::now() >= deadline)) {
            // Withdraw the request; if the handler claimed it meanwhile, it is already running
            // on its thread and finishes within microseconds.
            int expected = requested;
            if (slot.state.compare_exchange_strong(expected, idle, std::memory_order_acq_rel))
                return sample_result::no_answer;
            continue;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(state == capturing ? 10 : 200));
    }
    slot.state.store(idle, std::memory_order_relaxed);
    if (!slot.in_context)
        return sample_result::not_in_context;
    out.size = 0;
    std::size_t first = slot.found_signal_frame ? slot.first : std::min<std::size_t>(2, slot.stack.size);
    for (std::size_t i = first; i < slot.stack.size; ++i)
        out.frames[out.size++] = slot.stack.frames[i];
    return sample_result::captured;
}

bool waiting_in_epoll(const raw_stack& stack)
{
    Dl_info info;
    return stack.size > 0 && dladdr(reinterpret_cast<void*>(stack.frames[0]), &info) != 0 &&
           info.dli_sname != nullptr && std::strstr(info.dli_sname, "epoll_") != nullptr;
}

namespace {

std::vector<std::string> symbolize_now(const raw_stack& stack)
{
    std::vector<std::string> names;
    names.reserve(stack.size);
    for (std::size_t i = 0; i < stack.size; ++i) {
        boost::stacktrace::frame frame(reinterpret_cast<boost::stacktrace::frame::native_frame_ptr_t>(stack.frames[i]));
        std::string name = frame.name();
        if (name.empty()) {
            char address[32];
            std::snprintf(address, sizeof address, "0x%zx", static_cast<std::size_t>(stack.frames[i]));
            name = address;
        }
        std::string file = frame.source_file();
        if (!file.empty())
            name += " at " + file + ':' + std::to_string(frame.source_line());
        names.push_back(std::move(name));
    }
    return names;
}

// One thread per process symbolizes: Boost.Stacktrace keeps libbacktrace's state (the parsed
// debug information, megabytes, never freed) per thread, so it is loaded once, here, rather
// than by every detector's thread. Never destroyed: its detached thread runs until exit.
class symbolizer {
public:
    struct request {
        raw_stack stack;
        std::vector<std::string> names;
        bool done = false;
    };

    static symbolizer& instance()
    {
        static symbolizer* const s = new symbolizer;
        return *s;
    }

    bool symbolize(const raw_stack& stack, std::vector<std::string>& names, const std::atomic<bool>& cancelled)
    {
        auto r = std::make_shared<request>();
        r->stack = stack;
        std::unique_lock<std::mutex> lock(mutex_);
        queue_.push_back(r);
        work_.notify_one();
        while (!r->done) {
            if (cancelled.load())
                return false; // the request stays alive in the queue until served
            done_.wait_for(lock, std::chrono::milliseconds(10));
        }
        names = std::move(r->names);
        return true;
    }

private:
    symbolizer()
    {
        start_quiet_thread([this] { run(); }).detach();
    }

    void run()
    {
        pthread_setname_np(pthread_self(), "stall_symbols");
        raw_stack warm_up;
        warm_up.frames[0] = reinterpret_cast<std::uintptr_t>(&symbolize_now);
        warm_up.size = 1;
        symbolize_now(warm_up);
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            work_.wait(lock, [&] { return !queue_.empty(); });
            auto r = queue_.front();
            queue_.pop_front();
            lock.unlock();
            std::vector<std::string> names = symbolize_now(r->stack);
            lock.lock();
            r->names = std::move(names);
            r->done = true;
            done_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable work_, done_;
    std::deque<std::shared_ptr<request>> queue_;
};

} // namespace

std::thread start_quiet_thread(std::function<void()> body)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        std::thread t(std::move(body));
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        return t;
    } catch (...) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        throw;
    }
}

void start_symbolizer()
{
    symbolizer::instance();
}

bool symbolize(const raw_stack& stack, std::vector<std::string>& names, const std::atomic<bool>& cancelled)
{
    return symbolizer::instance().symbolize(stack, names, cancelled);
}

} // namespace asio_blocking::detail
