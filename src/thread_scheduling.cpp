// Puts a worker thread in the OS scheduling class that pool_options::worker_scheduling names.
#include "thread_scheduling.hpp"

#include <algorithm>
#include <cerrno>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace asio_blocking::detail {

int this_thread_nice() noexcept
{
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
    return errno == 0 ? nice : 0;
}

namespace {

// The kernel's struct sched_attr (linux/sched/types.h clashes with <sched.h>'s sched_param);
// glibc 2.36 has no wrapper for sched_setattr / sched_getattr.
struct sched_attr {
    std::uint32_t size;
    std::uint32_t sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime; // a fair-class thread's requested slice, in ns (Linux 6.12+)
    std::uint64_t sched_deadline;
    std::uint64_t sched_period;
};

// Moves the calling thread to `policy` (a fair one) at `nice`, asking for a time slice of
// `slice_us` (0: the kernel's default), in one sched_setattr, which does all or nothing. Where
// that is refused (no sched_setattr: gVisor, seccomp sandboxes), the older calls, without the
// slice. False unless the thread ends up in `policy` at `nice`.
bool set_fair_class(int policy, int nice, unsigned slice_us) noexcept
{
    sched_attr attr{};
    attr.size = sizeof attr;
    attr.sched_policy = static_cast<std::uint32_t>(policy);
    attr.sched_nice = nice;
    attr.sched_runtime = std::uint64_t{slice_us} * 1000u;
    if (syscall(SYS_sched_setattr, 0, &attr, 0u) == 0)
        return true;
    sched_param param{};
    const bool policy_set = sched_getscheduler(0) == policy || sched_setscheduler(0, policy, &param) == 0;
    const bool nice_set =
        this_thread_nice() == nice || setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) == 0;
    return policy_set && nice_set;
}

} // namespace

unsigned this_thread_slice_us() noexcept
{
    sched_attr attr{};
    if (syscall(SYS_sched_getattr, 0, &attr, static_cast<unsigned>(sizeof attr), 0u) != 0)
        return 0;
    return static_cast<unsigned>(attr.sched_runtime / 1000u);
}

bool apply_to_this_thread(os_scheduling scheduling, int base_nice) noexcept
{
    sched_param param{};
    param.sched_priority = 0;
    switch (scheduling) {
    case os_scheduling::normal:
        return true;
    case os_scheduling::low:
        // SCHED_BATCH: the thread never preempts others on wake-up; the nice value gives it a
        // smaller share of a core shared with the application's own threads (never raised
        // here: only lowered). The short slice: a computing worker that an event loop has to
        // wait for (its slice is protected from wake-up preemption) yields the CPU within
        // 0.1 ms rather than milliseconds (bench `mixed`: loop lag p99).
        return set_fair_class(SCHED_BATCH,
                              std::max(this_thread_nice(), std::min(base_nice + low_scheduling_nice_increment, 19)),
                              low_scheduling_slice_us);
    case os_scheduling::idle:
        // Any runnable normal thread preempts a SCHED_IDLE one at once.
        return sched_setscheduler(0, SCHED_IDLE, &param) == 0;
    }
    return false;
}

bool restore_this_thread(int base_nice) noexcept
{
    // With no slice asked for, the kernel's default slice returns too (sched_setscheduler
    // alone keeps the short one `low` asked for). Lowering the nice value or leaving SCHED_IDLE
    // may be refused (no CAP_SYS_NICE): then at least SCHED_BATCH and the slice go.
    const int nice = this_thread_nice();
    if (!set_fair_class(SCHED_OTHER, std::min(nice, base_nice), 0))
        (void)set_fair_class(SCHED_OTHER, nice, 0);
    return sched_getscheduler(0) == SCHED_OTHER && this_thread_nice() <= base_nice;
}

bool this_thread_runs_lowered(int base_nice) noexcept
{
    const int policy = sched_getscheduler(0);
    const int nice = this_thread_nice();
    return policy == SCHED_BATCH || policy == SCHED_IDLE ||
           (nice > base_nice && nice >= std::min(base_nice + low_scheduling_nice_increment, 19));
}

} // namespace asio_blocking::detail
