// Puts a worker thread in the OS scheduling class that pool_options::worker_scheduling names.
#include "thread_scheduling.hpp"

#include <algorithm>
#include <cerrno>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

namespace asio_blocking::detail {

int this_thread_nice() noexcept
{
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
    return errno == 0 ? nice : 0;
}

bool apply_to_this_thread(os_scheduling scheduling, int base_nice) noexcept
{
    sched_param param{};
    param.sched_priority = 0;
    switch (scheduling) {
    case os_scheduling::normal:
        return true;
    case os_scheduling::low: {
        // SCHED_BATCH: the thread never preempts others on wake-up; the nice value gives it a
        // smaller share of a core shared with the application's own threads.
        const bool batch = sched_setscheduler(0, SCHED_BATCH, &param) == 0;
        const int nice = std::min(base_nice + low_scheduling_nice_increment, 19);
        const bool niced =
            nice <= this_thread_nice() || setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) == 0;
        return batch && niced;
    }
    case os_scheduling::idle:
        // Any runnable normal thread preempts a SCHED_IDLE one at once.
        return sched_setscheduler(0, SCHED_IDLE, &param) == 0;
    }
    return false;
}

bool restore_this_thread(int base_nice) noexcept
{
    sched_param param{};
    param.sched_priority = 0;
    const int policy = sched_getscheduler(0);
    if (policy == SCHED_BATCH || policy == SCHED_IDLE)
        sched_setscheduler(0, SCHED_OTHER, &param);
    if (this_thread_nice() > base_nice)
        setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), base_nice);
    return sched_getscheduler(0) == SCHED_OTHER && this_thread_nice() <= base_nice;
}

} // namespace asio_blocking::detail
