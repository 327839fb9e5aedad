// How the pool sizes itself: the OS limits it reads (CPUs, threads), the CPU time it samples,
// and the OS scheduling class of its workers.
#include "test_support.hpp"

#include "cgroup.hpp"
#include "cpu_budget.hpp"
#include "cpu_demand.hpp"
#include "thread_cpu_clock.hpp"
#include "thread_limit.hpp"
#include "thread_scheduling.hpp"

#include "engine/call_timer.hpp"
#include "engine/growth_policy.hpp"

#include <asio_blocking/metrics.hpp>
#include <asio_blocking/pool_options.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <mutex>
#include <optional>
#include <sched.h>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ab = asio_blocking;
namespace ad = asio_blocking::detail;
using namespace std::chrono_literals;

namespace {

/// A scratch directory tree standing in for /sys/fs/cgroup, removed at the end of the test.
class fake_cgroup_tree {
public:
    fake_cgroup_tree()
        : root_(std::filesystem::temp_directory_path() /
                ("asio_blocking_cgroup_" + std::to_string(getpid()) + "_" + std::to_string(counter_++)))
    {
        std::filesystem::create_directories(root_);
    }
    ~fake_cgroup_tree() { std::filesystem::remove_all(root_); }

    /// Writes `contents` to `file` in `dir` (created if missing); returns the directory.
    std::string write(const std::string& dir, const std::string& file, const std::string& contents)
    {
        const auto d = root_ / dir;
        std::filesystem::create_directories(d);
        std::ofstream(d / file) << contents;
        return d.string();
    }
    std::string dir(const std::string& relative) const { return (root_ / relative).string(); }

private:
    static inline int counter_ = 0;
    std::filesystem::path root_;
};

/// The scheduling policy and nice value of the calling thread, as the kernel reports them in
/// /proc/thread-self/stat (fields 41 and 19).
struct thread_stat {
    int policy = -1;
    int nice = 100;
};

/// Reads a /proc/.../stat file; nullopt if it is gone (the thread has exited).
std::optional<thread_stat> read_thread_stat(const std::filesystem::path& file)
{
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.empty())
        return std::nullopt;
    // The command name (field 2) may hold spaces: fields are counted after its closing ')'.
    std::istringstream rest(text.substr(text.rfind(')') + 2));
    std::string field;
    thread_stat s;
    for (int n = 3; rest >> field; ++n) {
        if (n == 19)
            s.nice = std::stoi(field);
        if (n == 41)
            s.policy = std::stoi(field);
    }
    return s;
}

thread_stat read_thread_stat()
{
    return read_thread_stat("/proc/thread-self/stat").value_or(thread_stat{});
}

} // namespace

BOOST_AUTO_TEST_SUITE(sizing_test)

// ---------------------------------------------------------------------------------------------
// Finding this process's cgroup

BOOST_AUTO_TEST_CASE(cgroup_path_is_read_from_the_v2_line_or_the_v1_controller_line)
{
    const std::string self = "12:pids:/user.slice/u.service\n"
                             "4:cpu,cpuacct:/cpu/group\n"
                             "1:name=systemd:/init.scope\n"
                             "0::/system.slice/app:with:colons.service\n";
    BOOST_TEST(ad::cgroup_path(self, ad::cgroup_v2).value() == "/system.slice/app:with:colons.service");
    BOOST_TEST(ad::cgroup_path(self, ad::cgroup_hierarchy{"cpu"}).value() == "/cpu/group");
    BOOST_TEST(ad::cgroup_path(self, ad::cgroup_hierarchy{"cpuacct"}).value() == "/cpu/group");
    BOOST_TEST(ad::cgroup_path(self, ad::cgroup_hierarchy{"pids"}).value() == "/user.slice/u.service");
    BOOST_TEST(!ad::cgroup_path(self, ad::cgroup_hierarchy{"memory"}));
    BOOST_TEST(!ad::cgroup_path("4:cpu:/a\n", ad::cgroup_v2));
}

BOOST_AUTO_TEST_CASE(cgroup_mounts_are_found_in_mountinfo_with_or_without_optional_fields)
{
    const std::string mountinfo =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
        "39 31 0:36 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:4 master:1 - cgroup2 cgroup2 rw\n";
    const auto v2 = ad::find_cgroup_mount(mountinfo, ad::cgroup_v2).value();
    BOOST_TEST(v2.mount_point == "/sys/fs/cgroup/unified");
    BOOST_TEST(v2.root == "/");
    const auto cpu = ad::find_cgroup_mount(mountinfo, ad::cgroup_hierarchy{"cpu"}).value();
    BOOST_TEST(cpu.mount_point == "/sys/fs/cgroup/cpu,cpuacct");
    const auto pids = ad::find_cgroup_mount(mountinfo, ad::cgroup_hierarchy{"pids"}).value();
    BOOST_TEST(pids.root == "/docker/abc");
    BOOST_TEST(!ad::find_cgroup_mount(mountinfo, ad::cgroup_hierarchy{"memory"}));
    BOOST_TEST(!ad::find_cgroup_mount("garbage\n\n", ad::cgroup_v2));
}

BOOST_AUTO_TEST_CASE(cgroup_dirs_are_the_cgroup_and_its_ancestors_below_the_mount_root)
{
    using dirs = std::vector<std::string>;
    BOOST_TEST((ad::cgroup_dirs({"/sys/fs/cgroup", "/"}, "/a/b") ==
                dirs{"/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a", "/sys/fs/cgroup"}));
    BOOST_TEST((ad::cgroup_dirs({"/sys/fs/cgroup", "/"}, "/") == dirs{"/sys/fs/cgroup"}));
    // A container sees its own cgroup as the mount's root: nothing above it is visible.
    BOOST_TEST((ad::cgroup_dirs({"/sys/fs/cgroup", "/docker/abc"}, "/docker/abc") == dirs{"/sys/fs/cgroup"}));
    BOOST_TEST((ad::cgroup_dirs({"/sys/fs/cgroup", "/docker/abc"}, "/docker/abc/x") ==
                dirs{"/sys/fs/cgroup/x", "/sys/fs/cgroup"}));
}

// ---------------------------------------------------------------------------------------------
// The CPU budget

BOOST_AUTO_TEST_CASE(cpu_max_quota_is_rounded_up_to_whole_cpus)
{
    BOOST_TEST(!ad::parse_cpu_max("max 100000\n"));
    BOOST_TEST(ad::parse_cpu_max("200000 100000\n").value() == 2u);
    BOOST_TEST(ad::parse_cpu_max("150000 100000").value() == 2u);
    BOOST_TEST(ad::parse_cpu_max("50000 100000").value() == 1u);
    BOOST_TEST(ad::parse_cpu_max("100000").value() == 1u);
    BOOST_TEST(!ad::parse_cpu_max(""));
    BOOST_TEST(!ad::parse_cpu_max("lots 100000"));
    BOOST_TEST(!ad::parse_cpu_max("100000 0"));
}

BOOST_AUTO_TEST_CASE(cfs_quota_of_minus_one_means_no_limit)
{
    BOOST_TEST(!ad::parse_cfs_quota("-1\n", "100000\n"));
    BOOST_TEST(ad::parse_cfs_quota("250000\n", "100000\n").value() == 3u);
    BOOST_TEST(!ad::parse_cfs_quota("", "100000"));
}

BOOST_AUTO_TEST_CASE(the_tightest_cpu_quota_of_the_cgroup_and_its_ancestors_applies)
{
    fake_cgroup_tree fs;
    const std::vector<std::string> v2{fs.write("v2/a/b", "cpu.max", "max 100000\n"),
                                      fs.write("v2/a", "cpu.max", "300000 100000\n"),
                                      fs.write("v2", "cpu.max", "200000 100000\n")};
    BOOST_TEST(ad::cgroup_cpu_quota(v2, {}).value() == 2u);
    fs.write("v1", "cpu.cfs_quota_us", "100000\n");
    const std::vector<std::string> v1{fs.write("v1", "cpu.cfs_period_us", "100000\n")};
    BOOST_TEST(ad::cgroup_cpu_quota(v2, v1).value() == 1u);
    BOOST_TEST(!ad::cgroup_cpu_quota({fs.dir("missing")}, {fs.dir("v2/a/b")}));
}

// A polling worker takes a CPU whole: a quota of 1.5 CPUs leaves it 1 (and its caller none).
BOOST_AUTO_TEST_CASE(a_quota_counted_down_gives_only_the_whole_cpus)
{
    const auto down = ad::quota_rounding::down;
    BOOST_TEST(ad::parse_cpu_max("150000 100000", down).value() == 1u);
    BOOST_TEST(ad::parse_cpu_max("200000 100000", down).value() == 2u);
    BOOST_TEST(ad::parse_cpu_max("50000 100000", down).value() == 0u);
    BOOST_TEST(!ad::parse_cpu_max("max 100000", down));
    BOOST_TEST(ad::parse_cfs_quota("250000\n", "100000\n", down).value() == 2u);
    fake_cgroup_tree fs;
    const std::vector<std::string> v2{fs.write("v2", "cpu.max", "110000 100000\n")};
    BOOST_TEST(ad::cgroup_cpu_quota(v2, {}).value() == 2u);
    BOOST_TEST(ad::cgroup_cpu_quota(v2, {}, down).value() == 1u);
    BOOST_TEST(ad::cpu_budget(down) >= 1u);
    BOOST_TEST(ad::cpu_budget(down) <= ad::cpu_budget());
}

BOOST_AUTO_TEST_CASE(cpu_budget_is_at_least_one_and_within_the_affinity_mask)
{
    const std::size_t budget = ad::cpu_budget();
    BOOST_TEST(budget >= 1u);
    const auto affinity = ad::affinity_cpu_count();
    BOOST_REQUIRE(affinity.has_value());
    BOOST_TEST(budget <= *affinity);
}

// ---------------------------------------------------------------------------------------------
// The OS thread limit

BOOST_AUTO_TEST_CASE(pids_headroom_is_max_minus_current_and_never_negative)
{
    BOOST_TEST(!ad::parse_pids_headroom("max\n", "5\n"));
    BOOST_TEST(ad::parse_pids_headroom("100\n", "30\n").value() == 70u);
    BOOST_TEST(ad::parse_pids_headroom("10", "12").value() == 0u);
    BOOST_TEST(!ad::parse_pids_headroom("10", "many"));
}

BOOST_AUTO_TEST_CASE(nproc_headroom_subtracts_the_processs_own_threads)
{
    BOOST_TEST(ad::parse_status_threads("Name:\tx\nState:\tS\nThreads:\t7\nSigQ:\t0/1\n").value() == 7u);
    BOOST_TEST(!ad::parse_status_threads("Name:\tx\n"));
    BOOST_TEST(!ad::nproc_headroom(std::nullopt, 5));
    BOOST_TEST(ad::nproc_headroom(100, 5).value() == 95u);
    BOOST_TEST(ad::nproc_headroom(3, 5).value() == 0u);
}

BOOST_AUTO_TEST_CASE(the_tightest_pids_headroom_of_the_cgroup_and_its_ancestors_applies)
{
    fake_cgroup_tree fs;
    fs.write("a/b", "pids.max", "max\n");
    const auto leaf = fs.write("a/b", "pids.current", "3\n");
    fs.write("a", "pids.max", "50\n");
    const auto parent = fs.write("a", "pids.current", "40\n");
    fs.write("", "pids.max", "1000\n");
    const auto root = fs.write("", "pids.current", "900\n");
    BOOST_TEST(ad::cgroup_pids_headroom({leaf, parent, root}).value() == 10u);
    BOOST_TEST(!ad::cgroup_pids_headroom({leaf}));
}

BOOST_AUTO_TEST_CASE(effective_max_threads_is_max_threads_unless_the_os_allows_fewer)
{
    ab::blocking_pool pool({.max_threads = 16});
    const auto headroom = ad::os_thread_headroom();
    const auto m = pool.metrics();
    BOOST_TEST(m.effective_max_threads <= 16u);
    if (!headroom || *headroom >= 64) // the OS leaves room: the option alone decides
        BOOST_TEST(m.effective_max_threads == 16u);
}

BOOST_AUTO_TEST_CASE(a_failed_thread_start_lowers_the_cap_until_it_recovers)
{
    const auto t0 = std::chrono::steady_clock::now();
    ad::thread_cap cap(std::optional<std::size_t>(100));
    BOOST_TEST(cap.limit(512, t0) == 100u); // the OS allows fewer than max_threads
    BOOST_TEST(cap.limit(16, t0) == 16u);
    cap.start_failed(7, t0);
    BOOST_TEST(cap.limit(512, t0 + 10ms) == 7u);
    BOOST_TEST(cap.limit(4, t0 + 10ms) == 4u);
    BOOST_TEST(cap.limit(512, t0 + ad::thread_cap::recovery) == 100u);
    cap.start_failed(0, t0 + 2s); // even with none left, one thread may still be tried
    BOOST_TEST(cap.limit(512, t0 + 2s) == 1u);
    BOOST_TEST(ad::thread_cap(std::nullopt).limit(512, t0) == 512u);
    BOOST_TEST(ad::thread_cap(std::optional<std::size_t>(0)).limit(512, t0) == 1u);
}

// ---------------------------------------------------------------------------------------------
// Per-thread CPU time

BOOST_AUTO_TEST_CASE(thread_cpu_clock_counts_computing_and_not_blocking)
{
    test::gate release;
    std::atomic<bool> computed{false};
    std::thread computing([&] {
        const auto own = ad::thread_cpu_clock::of(pthread_self()).value();
        volatile unsigned long sink = 0;
        while (own.used().value_or(0ns) < 20ms)
            sink = sink + 1;
        computed = true;
        release.wait();
    });
    std::thread blocking([&] { release.wait(); });
    BOOST_TEST(test::eventually([&] { return computed.load() && release.waiting() == 2; }));
    const auto busy = ad::thread_cpu_clock::of(computing.native_handle()).value().used();
    const auto idle = ad::thread_cpu_clock::of(blocking.native_handle()).value().used();
    release.open();
    computing.join();
    blocking.join();
    BOOST_REQUIRE(busy.has_value());
    BOOST_REQUIRE(idle.has_value());
    BOOST_TEST(busy->count() >= std::chrono::nanoseconds(20ms).count());
    BOOST_TEST(idle->count() < std::chrono::nanoseconds(20ms).count());
}

BOOST_AUTO_TEST_CASE(schedstat_gives_the_time_spent_waiting_for_a_cpu)
{
    BOOST_TEST(ad::parse_schedstat_run_delay("191614563 16708179 414\n").value().count() == 16708179);
    BOOST_TEST(!ad::parse_schedstat_run_delay("191614563\n"));
    BOOST_TEST(!ad::parse_schedstat_run_delay("1 x 2"));
    BOOST_TEST(ad::read_run_delay(gettid()).count() >= 0);
}

BOOST_AUTO_TEST_CASE(cpu_demand_is_a_whole_cpu_while_runnable_else_cpu_time_and_waits_for_one)
{
    using st = ad::thread_state_now;
    const ad::thread_times start{1s, 2s};
    BOOST_TEST(ad::cpu_demand(start, {1s + 2ms, 2s}, 10ms, st::not_runnable) == 0.2,
               boost::test_tools::tolerance(1e-9));
    // Mostly preempted, briefly asleep now: the wait for a CPU counts as wanting one.
    BOOST_TEST(ad::cpu_demand(start, {1s + 2ms, 2s + 6ms}, 10ms, st::not_runnable) == 0.8,
               boost::test_tools::tolerance(1e-9));
    // Runnable: computing, or waiting for a core it has not had yet (that wait is not counted yet).
    BOOST_TEST(ad::cpu_demand(start, start, 10ms, st::runnable) == 1.0);
    BOOST_TEST(ad::cpu_demand(start, {1s + 11ms, 2s}, 10ms, st::not_runnable) == 1.0); // clocks read apart
    BOOST_TEST(ad::cpu_demand(start, start, 0ms, st::not_runnable) == 0.0);
}

BOOST_AUTO_TEST_CASE(running_calls_at_half_a_cpu_or_more_count_as_cpu_bound)
{
    ad::running_cpu r;
    r.add(0.9);
    r.add(0.05);
    r.add(ad::cpu_bound_share);
    BOOST_TEST(r.cpu_bound == 2u);
    BOOST_TEST(r.blocked == 1u);
    BOOST_TEST(r.cpus_wanted == 1.45, boost::test_tools::tolerance(1e-9));
}

// ---------------------------------------------------------------------------------------------
// Worker OS scheduling

BOOST_AUTO_TEST_CASE(sizing_options_default_to_the_cpu_budget_and_low_scheduling)
{
    ab::pool_options d;
    BOOST_TEST(d.cpu_limit == 0u);
    BOOST_TEST((d.worker_scheduling == ab::os_scheduling::low));
}

BOOST_AUTO_TEST_CASE(an_os_scheduling_outside_the_enum_is_rejected_naming_the_field)
{
    try {
        ab::blocking_pool pool({.worker_scheduling = static_cast<ab::os_scheduling>(7)});
        BOOST_FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find("worker_scheduling") != std::string::npos);
    }
}

namespace {

struct seen {
    int policy;
    thread_stat stat;
    unsigned slice_us;
};

seen scheduling_of(ab::blocking_pool& pool)
{
    return ab::async_blocking(
               pool.get_executor(),
               [] {
                   return seen{sched_getscheduler(0), read_thread_stat(), ad::this_thread_slice_us()};
               },
               boost::asio::use_future)
        .get();
}

/// A call of a millisecond or more: the kind after which a worker takes worker_scheduling's class.
void run_a_slow_call(ab::blocking_pool& pool)
{
    ab::async_blocking(
        pool.get_executor(), [] { std::this_thread::sleep_for(3ms); }, boost::asio::use_future)
        .get();
}

} // namespace

BOOST_AUTO_TEST_CASE(workers_run_in_the_os_scheduling_class_the_options_name)
{
    const int creator_policy = sched_getscheduler(0);
    const int creator_nice = ad::this_thread_nice();
    struct first_and_after {
        seen first, after;
    };
    auto run_in = [](ab::os_scheduling s) {
        ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = s});
        first_and_after r;
        r.first = scheduling_of(pool);
        run_a_slow_call(pool);
        r.after = scheduling_of(pool);
        return r;
    };

    const first_and_after normal = run_in(ab::os_scheduling::normal);
    for (const seen& n : {normal.first, normal.after}) {
        BOOST_TEST(n.policy == creator_policy);
        BOOST_TEST(n.stat.policy == creator_policy);
        BOOST_TEST(n.stat.nice == creator_nice);
    }

    // The pool's only thread runs tiny calls at normal priority, and takes the class after a
    // call of a millisecond or more.
    const first_and_after low = run_in(ab::os_scheduling::low);
    BOOST_TEST(low.first.policy == creator_policy);
    BOOST_TEST(low.first.stat.nice == creator_nice);
    BOOST_TEST(low.after.policy == SCHED_BATCH);
    BOOST_TEST(low.after.stat.policy == SCHED_BATCH);
    BOOST_TEST(low.after.stat.nice == std::min(creator_nice + ad::low_scheduling_nice_increment, 19));
    // A short time slice, where the kernel takes one (EEVDF custom slices: Linux 6.12).
    const unsigned creator_slice = ad::this_thread_slice_us();
    BOOST_TEST_MESSAGE("time slice: creator " << creator_slice << " us, low worker " << low.after.slice_us << " us");
    if (creator_slice != 0) {
        BOOST_TEST(low.first.slice_us == creator_slice);
        BOOST_TEST(low.after.slice_us == ad::low_scheduling_slice_us);
    }

    const first_and_after idle = run_in(ab::os_scheduling::idle);
    BOOST_TEST(idle.first.policy == creator_policy);
    BOOST_TEST(idle.after.policy == SCHED_IDLE);
    BOOST_TEST(idle.after.stat.policy == SCHED_IDLE);
}

namespace {

/// Whether this process may lower a thread's nice value again (CAP_SYS_NICE, or root).
bool may_raise_priority()
{
    bool may = false;
    std::thread([&] {
        const int nice = ad::this_thread_nice();
        const auto tid = static_cast<id_t>(gettid());
        may = nice < 19 && setpriority(PRIO_PROCESS, tid, nice + 1) == 0 && setpriority(PRIO_PROCESS, tid, nice) == 0;
    }).join();
    return may;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_lowered_worker_serves_tiny_calls_at_normal_priority_again)
{
    // Back in the normal class once calls have been tiny for a while, where the OS lets a thread
    // raise its priority again; without CAP_SYS_NICE it stays lowered (a documented limit).
    const int creator_policy = sched_getscheduler(0);
    const int creator_nice = ad::this_thread_nice();
    const bool may_raise = may_raise_priority();
    for (ab::os_scheduling s : {ab::os_scheduling::low, ab::os_scheduling::idle}) {
        ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = s});
        run_a_slow_call(pool);
        BOOST_TEST(scheduling_of(pool).policy != creator_policy);
        for (unsigned i = 0; i < 4 * ad::call_timer::tiny_calls_to_sample; ++i)
            ab::async_blocking(
                pool.get_executor(), [] {}, boost::asio::use_future)
                .get();
        const seen back = scheduling_of(pool);
        if (may_raise) {
            BOOST_TEST(back.policy == creator_policy);
            BOOST_TEST(back.stat.nice == creator_nice);
            BOOST_TEST(back.slice_us == ad::this_thread_slice_us()); // the default slice again
        } else {
            BOOST_TEST((back.policy == SCHED_IDLE || back.stat.nice > creator_nice));
        }
    }
}

namespace {

/// Has sched_setattr fail with ENOSYS in the calling thread and the threads it starts, as in
/// gVisor (google/gvisor#264) and some seccomp sandboxes; true if the filter is in place.
bool refuse_sched_setattr_in_this_thread()
{
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_setattr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_lowered_worker_returns_to_normal_where_sched_setattr_is_unavailable)
{
    // Where the sandbox has no sched_setattr, a worker still leaves SCHED_BATCH and its raised
    // nice value through the calls that need no struct sched_attr.
    if (!may_raise_priority())
        return; // a nice value cannot come back down here in any case
    const int creator_policy = sched_getscheduler(0);
    const int creator_nice = ad::this_thread_nice();
    bool filtered = false;
    seen lowered{}, back{};
    std::thread([&] { // the filter stays with this thread and the pool threads it starts
        filtered = refuse_sched_setattr_in_this_thread();
        if (!filtered)
            return;
        ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = ab::os_scheduling::low});
        run_a_slow_call(pool);
        lowered = scheduling_of(pool);
        for (unsigned i = 0; i < 4 * ad::call_timer::tiny_calls_to_sample; ++i)
            ab::async_blocking(
                pool.get_executor(), [] {}, boost::asio::use_future)
                .get();
        back = scheduling_of(pool);
    })
        .join();
    BOOST_REQUIRE(filtered);
    BOOST_TEST(lowered.policy == SCHED_BATCH);
    BOOST_TEST(back.policy == creator_policy);
    BOOST_TEST(back.stat.nice == creator_nice);
}

BOOST_AUTO_TEST_CASE(min_threads_start_at_normal_priority)
{
    // Threads kept warm for latency-sensitive calls serve them at normal priority.
    const int creator_policy = sched_getscheduler(0);
    ab::blocking_pool pool({.min_threads = 2, .max_threads = 2, .worker_scheduling = ab::os_scheduling::low});
    BOOST_REQUIRE(test::eventually([&] { return pool.metrics().threads == 2u; }));
    test::busy_pool busy(pool, 1); // one of them blocks; the other runs the next call
    BOOST_TEST(scheduling_of(pool).policy == creator_policy);
    BOOST_TEST(pool.metrics().threads_started == 2u);
    busy.release();
}

BOOST_AUTO_TEST_CASE(a_thread_started_beside_a_busy_one_starts_in_the_class)
{
    ab::blocking_pool pool({.max_threads = 2, .worker_scheduling = ab::os_scheduling::low});
    test::busy_pool busy(pool, 1); // the first thread, at normal priority, blocks
    // The call waits, the blocked one is seen asleep, and a second thread starts for it.
    BOOST_TEST(scheduling_of(pool).policy == SCHED_BATCH);
    BOOST_TEST(pool.metrics().threads_started == 2u);
    busy.release();
}

BOOST_AUTO_TEST_CASE(the_calling_thread_keeps_its_class_when_a_pool_of_idle_workers_runs)
{
    const int before = sched_getscheduler(0);
    ab::blocking_pool pool({.max_threads = 2, .worker_scheduling = ab::os_scheduling::idle});
    ab::async_blocking(
        pool.get_executor(), [] { return 0; }, boost::asio::use_future)
        .get();
    BOOST_TEST(sched_getscheduler(0) == before);
}

namespace {

/// The policy and nice value of each of this process's threads named `name`, from
/// /proc/self/task/<tid>/stat (fields 41 and 19).
std::vector<thread_stat> threads_named(const std::string& name)
{
    std::vector<thread_stat> found;
    test::for_each_thread_named(name, [&](const std::filesystem::path& task) {
        if (std::optional<thread_stat> s = read_thread_stat(task / "stat"))
            found.push_back(*s);
    });
    return found;
}

std::vector<int> policies_of(const std::string& name)
{
    std::vector<int> policies;
    for (const thread_stat& s : threads_named(name))
        policies.push_back(s.policy);
    return policies;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_monitor_started_by_a_low_priority_worker_runs_in_the_normal_class)
{
    ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = ab::os_scheduling::low});
    test::gate release;
    std::atomic<bool> second_ran{false};
    auto ex = pool.get_executor();
    // The worker queues a call with a deadline: the monitor starts on the worker's thread.
    boost::asio::post(ex, [&] {
        boost::asio::post(boost::asio::require(ex, ab::with_queue_timeout(std::chrono::hours(1))),
                          [&] { second_ran = true; });
        release.wait();
    });
    BOOST_TEST(test::eventually([&] { return !policies_of("ab-monitor").empty(); }));
    const auto policies = policies_of("ab-monitor");
    release.open();
    BOOST_TEST(test::eventually([&] { return second_ran.load(); }));
    for (int policy : policies)
        BOOST_TEST(policy == SCHED_OTHER);
}

namespace {

/// Runs `io` until `done` holds or the patience runs out; true if it held.
template <typename Pred>
bool run_until(boost::asio::io_context& io, Pred done)
{
    const auto until = std::chrono::steady_clock::now() + test::patience;
    while (!done() && std::chrono::steady_clock::now() < until) {
        io.restart();
        io.run_for(10ms);
    }
    return done();
}

/// A call of a few milliseconds from `io`'s thread, its completion counted in `done`.
void submit_slow_call(ab::blocking_pool& pool, boost::asio::io_context& io, std::atomic<int>& done)
{
    ab::async_blocking(
        pool, io.get_executor(), [] { std::this_thread::sleep_for(3ms); },
        [&done](std::exception_ptr e) {
            BOOST_TEST(!e);
            ++done;
        });
}

} // namespace

BOOST_AUTO_TEST_CASE(results_of_lowered_workers_reach_the_loop_through_a_courier_at_the_callers_priority)
{
    // Posting to an io_context wakes its loop while holding the loop's scheduler lock: a worker
    // at nice +10 doing so is preempted by the loop it woke, and the loop waits for the lock
    // until the worker gets a CPU again (milliseconds of loop lag in bench `mixed`). A lowered
    // worker hands its batch to the pool's courier, started by the caller at its priority.
    const int creator_nice = ad::this_thread_nice();
    boost::asio::io_context io;
    std::atomic<int> done{0};
    {
        ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = ab::os_scheduling::low});
        submit_slow_call(pool, io, done); // its worker moves to the low class after it
        BOOST_REQUIRE(run_until(io, [&] { return done == 1; }));
        for (int i = 0; i < 3; ++i) // submitted by this thread: the courier starts here
            submit_slow_call(pool, io, done);
        BOOST_REQUIRE(run_until(io, [&] { return done == 4; }));
        const std::vector<thread_stat> couriers = threads_named("ab-courier");
        BOOST_REQUIRE(couriers.size() == 1u);
        BOOST_TEST(couriers[0].policy == SCHED_OTHER);
        BOOST_TEST(couriers[0].nice == creator_nice);
    }
    BOOST_TEST(threads_named("ab-courier").empty()); // joined with the pool
}

BOOST_AUTO_TEST_CASE(a_joined_pool_leaves_no_batch_at_its_courier)
{
    // join() returns once the courier has posted every batch handed to it: the loop, run after
    // join(), gets every result.
    boost::asio::io_context io;
    std::atomic<int> done{0};
    ab::blocking_pool pool({.max_threads = 4, .worker_scheduling = ab::os_scheduling::low});
    submit_slow_call(pool, io, done);
    BOOST_REQUIRE(run_until(io, [&] { return done == 1; }));
    constexpr int calls = 40;
    for (int i = 0; i < calls; ++i)
        submit_slow_call(pool, io, done);
    pool.join();
    BOOST_TEST(run_until(io, [&] { return done == calls + 1; }));
    BOOST_TEST(io.run_for(0ms) == 0u); // nothing was left behind, and no work is outstanding
}

namespace {

// A thread sent `SIGUSR2` stays in this handler until a byte is written to the pipe: a courier
// that cannot run (preempted, descheduled) for as long as a test needs.
int hold_pipe[2] = {-1, -1};
std::atomic<bool> thread_held{false};

extern "C" void hold_in_signal_handler(int)
{
    const int saved = errno;
    thread_held = true;
    char c;
    while (read(hold_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    errno = saved;
}

/// The id of this process's thread named `name`; 0 if there is none.
pid_t tid_named(const std::string& name)
{
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string n;
        std::getline(comm, n);
        if (n == name)
            return static_cast<pid_t>(std::stoi(task.path().filename().string()));
    }
    return 0;
}

} // namespace

BOOST_AUTO_TEST_CASE(concurrent_joins_both_return_only_once_the_courier_has_posted_every_batch)
{
    // "All member functions may be called concurrently": a second join() must not return while
    // the first still waits for the courier to post what lowered workers handed it.
    boost::asio::io_context io;
    std::atomic<int> done{0};
    ab::blocking_pool pool({.max_threads = 2, .worker_scheduling = ab::os_scheduling::low});
    submit_slow_call(pool, io, done); // lowers the worker
    BOOST_REQUIRE(run_until(io, [&] { return done == 1; }));
    submit_slow_call(pool, io, done); // from this thread: starts the courier
    BOOST_REQUIRE(run_until(io, [&] { return done == 2; }));
    const pid_t courier = tid_named("ab-courier");
    BOOST_REQUIRE(courier != 0);

    // Released (and the handler put back) on every way out, before the pool joins the courier.
    struct courier_hold {
        struct sigaction previous {};
        bool installed = false;
        courier_hold()
        {
            struct sigaction hold {};
            hold.sa_handler = hold_in_signal_handler;
            sigemptyset(&hold.sa_mask);
            installed = pipe(hold_pipe) == 0 && sigaction(SIGUSR2, &hold, &previous) == 0;
        }
        void release() const
        {
            const char byte = 0;
            (void)!write(hold_pipe[1], &byte, 1);
        }
        ~courier_hold()
        {
            release();
            if (installed)
                sigaction(SIGUSR2, &previous, nullptr);
            for (int& fd : hold_pipe)
                if (fd >= 0)
                    close(std::exchange(fd, -1));
        }
    } hold;
    BOOST_REQUIRE(hold.installed);
    thread_held = false;
    BOOST_REQUIRE(syscall(SYS_tgkill, getpid(), courier, SIGUSR2) == 0);
    BOOST_REQUIRE(test::eventually([] { return thread_held.load(); }));

    constexpr int calls = 4;
    std::atomic<int> errors{0}; // their handlers run on the joiners: no Boost.Test there
    for (int i = 0; i < calls; ++i)
        ab::async_blocking( // their batches wait at the held courier
            pool, io.get_executor(), [] { std::this_thread::sleep_for(3ms); },
            [&](std::exception_ptr e) {
                errors += e ? 1 : 0;
                ++done;
            });
    std::mutex polling;
    std::atomic<int> returned{0};
    int seen_at_return[2] = {-1, -1};
    std::vector<std::thread> joiners;
    for (int j = 0; j < 2; ++j)
        joiners.emplace_back([&, j] {
            pool.join();
            std::lock_guard lk(polling);
            io.restart(); // run_until may have left it stopped, out of work
            io.poll();    // runs every result posted by now
            seen_at_return[j] = done.load();
            ++returned;
        });
    // Neither join may return while the courier is held: give either the chance to.
    (void)test::eventually([&] { return returned > 0; }, 500ms);
    hold.release();
    for (std::thread& t : joiners)
        t.join();
    BOOST_TEST(seen_at_return[0] == 2 + calls);
    BOOST_TEST(seen_at_return[1] == 2 + calls);
    BOOST_TEST(errors.load() == 0);
}

BOOST_AUTO_TEST_CASE(an_io_context_destroyed_while_the_courier_holds_its_batch_destroys_the_handlers)
{
    // The context's shutdown waits for a batch on its way through the courier, then destroys
    // the handlers it never ran; nothing touches the context afterwards (ASan, TSan).
    ab::blocking_pool pool({.max_threads = 4, .worker_scheduling = ab::os_scheduling::low});
    for (int round = 0; round < 10; ++round) {
        std::atomic<int> done{0}, destroyed{0};
        {
            boost::asio::io_context io;
            submit_slow_call(pool, io, done);
            BOOST_REQUIRE(run_until(io, [&] { return done == 1; }));
            struct counts_destruction {
                std::atomic<int>* destroyed;
                std::atomic<int>* done;
                counts_destruction(std::atomic<int>& d, std::atomic<int>& n)
                    : destroyed(&d)
                    , done(&n)
                {
                }
                counts_destruction(counts_destruction&& o) noexcept
                    : destroyed(std::exchange(o.destroyed, nullptr))
                    , done(o.done)
                {
                }
                ~counts_destruction()
                {
                    if (destroyed)
                        ++*destroyed;
                }
                void operator()(std::exception_ptr) { ++*done; }
            };
            for (int i = 0; i < 8; ++i)
                ab::async_blocking(
                    pool, io.get_executor(),
                    [round] { std::this_thread::sleep_for(std::chrono::microseconds(500 * round)); },
                    counts_destruction(destroyed, done));
        } // destroyed while results arrive
        BOOST_TEST(destroyed.load() == 8);
        BOOST_TEST(done.load() == 1);
    }
}

BOOST_AUTO_TEST_CASE(a_thread_running_below_the_creators_priority_does_not_start_the_courier)
{
    // A pool at `normal` leaves its workers as created: one started by a lowered worker (here,
    // to run a handler bound to it) runs at nice +10 in SCHED_BATCH without being a lowered
    // worker. Its submit must not start the courier, which would then post at that priority
    // for the pool's lifetime; the next submit from a thread at the creator's priority does.
    const int creator_policy = sched_getscheduler(0);
    const int creator_nice = ad::this_thread_nice();
    boost::asio::io_context io;
    std::atomic<int> done{0};
    ab::blocking_pool inheriting({.max_threads = 1, .worker_scheduling = ab::os_scheduling::normal});
    {
        ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = ab::os_scheduling::low});
        std::atomic<int> submitter_nice{creator_nice};
        // The slow call lowers its worker, which then hands the handler to `inheriting`,
        // starting that pool's thread in its own lowered class.
        ab::async_blocking(
            pool, io.get_executor(), [] { std::this_thread::sleep_for(3ms); },
            boost::asio::bind_executor(inheriting.get_executor(), [&](std::exception_ptr e) {
                BOOST_TEST(!e);
                submitter_nice = ad::this_thread_nice();
                for (int i = 0; i < 3; ++i)
                    submit_slow_call(pool, io, done);
            }));
        BOOST_REQUIRE(run_until(io, [&] { return done == 3; }));
        BOOST_TEST_MESSAGE("submitting thread's nice: " << submitter_nice.load());
        for (const thread_stat& s : threads_named("ab-courier")) {
            BOOST_TEST(s.policy == creator_policy);
            BOOST_TEST(s.nice == creator_nice);
        }
        submit_slow_call(pool, io, done); // from this thread: the courier starts here
        BOOST_REQUIRE(run_until(io, [&] { return done == 4; }));
        const std::vector<thread_stat> couriers = threads_named("ab-courier");
        BOOST_REQUIRE(couriers.size() == 1u);
        BOOST_TEST(couriers[0].policy == creator_policy);
        BOOST_TEST(couriers[0].nice == creator_nice);
    }
}

BOOST_AUTO_TEST_CASE(a_caller_slightly_below_the_creators_priority_still_starts_the_courier)
{
    // An event loop at nice +1 against the pool's creator is a caller, not a lowered thread: the
    // courier runs at its priority rather than not at all.
    const int creator_nice = ad::this_thread_nice();
    if (creator_nice + 1 >= std::min(creator_nice + ad::low_scheduling_nice_increment, 19))
        return; // no nice value between the creator's and the low class's
    boost::asio::io_context io;
    std::atomic<int> done{0};
    ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = ab::os_scheduling::low});
    submit_slow_call(pool, io, done); // lowers the worker
    BOOST_REQUIRE(run_until(io, [&] { return done == 1; }));
    std::thread([&] {
        setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), creator_nice + 1);
        for (int i = 0; i < 3; ++i)
            submit_slow_call(pool, io, done);
    }).join();
    BOOST_REQUIRE(run_until(io, [&] { return done == 4; }));
    const std::vector<thread_stat> couriers = threads_named("ab-courier");
    BOOST_REQUIRE(couriers.size() == 1u);
    BOOST_TEST(couriers[0].nice == creator_nice + 1);
}

// ---------------------------------------------------------------------------------------------
// Growth with CPU figures: the pure policy, on synthetic snapshots

namespace {

/// A warm pool of 4 busy workers with a backlog of slow calls, on 2 CPUs.
ad::growth_snapshot slow_backlog()
{
    ad::growth_snapshot s;
    s.queued = 20;
    s.threads = s.busy = 4;
    s.max_threads = 64;
    s.finished_calls = 100;
    s.slow_share = 256;
    s.oldest_running = 3ms;
    s.cpu_limit = 2;
    s.asker = ad::growth_asker::worker;
    return s;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_backlog_behind_blocked_calls_grows_while_cpus_are_spare)
{
    ad::growth_snapshot s = slow_backlog();
    s.running_cpus = 0.2; // four calls waiting for I/O, say
    s.cpu_bound_running = 0;
    BOOST_TEST(ad::decide_growth(s).start == 2u); // a tree, as for any blocking calls
    s.running_cpus = 1.2;                         // one computes, three wait
    s.cpu_bound_running = 1;
    BOOST_TEST(ad::decide_growth(s).start == 2u);
}

BOOST_AUTO_TEST_CASE(a_backlog_holds_once_the_running_calls_want_every_cpu)
{
    ad::growth_snapshot s = slow_backlog();
    s.running_cpus = 2.0;
    s.cpu_bound_running = 2; // two compute, two wait: the CPUs are full all the same
    const auto d = ad::decide_growth(s);
    BOOST_TEST(d.start == 0u);
    BOOST_TEST((d.recheck_after == ad::growth_policy::cpu_sample_period)); // a call may start blocking
    s.running_cpus = 1.6;                                                  // within half a CPU of the limit
    BOOST_TEST(ad::decide_growth(s).start == 0u);
}

BOOST_AUTO_TEST_CASE(computing_calls_get_one_thread_per_spare_cpu_and_no_tree)
{
    ad::growth_snapshot s = slow_backlog();
    s.threads = s.busy = 1;
    s.cpu_limit = 4;
    s.running_cpus = 1.0;
    s.cpu_bound_running = 1;
    BOOST_TEST(ad::decide_growth(s).start == 3u);
    s.starting = 3; // already on their way
    BOOST_TEST(ad::decide_growth(s).start == 0u);
    s.starting = 0;
    s.cpu_limit = 2;
    s.running_cpus = 0.9; // a computing thread preempted a little: still one spare CPU
    BOOST_TEST(ad::decide_growth(s).start == 1u);
}

BOOST_AUTO_TEST_CASE(slow_calls_without_cpu_figures_wait_for_the_monitors_sample)
{
    ad::growth_snapshot s = slow_backlog();
    s.running_cpus = -1; // no recent sample
    const auto d = ad::decide_growth(s);
    BOOST_TEST(d.start == 0u);
    BOOST_TEST((d.recheck_after == ad::growth_policy::cpu_sample_period));
    s.oldest_activity = ad::thread_activity::sleeping; // the monitor saw it blocked
    BOOST_TEST(ad::decide_growth(s).start == 2u);
}

BOOST_AUTO_TEST_CASE(a_backlog_of_tiny_calls_holds_even_with_cpus_spare)
{
    ad::growth_snapshot s = slow_backlog();
    s.threads = s.busy = 1;
    s.slow_share = 0;
    s.oldest_running = 20us;
    s.running_cpus = 1.0;
    s.cpu_bound_running = 1;
    BOOST_TEST(ad::decide_growth(s).start == 0u);
    s.oldest_running = 30ms; // a tiny call preempted for a long while: runnable, not stalled
    s.oldest_activity = ad::thread_activity::runnable;
    BOOST_TEST(ad::decide_growth(s).start == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_start_backs_off_and_a_lowered_cap_is_looked_at_when_it_lifts)
{
    ad::growth_snapshot s = slow_backlog();
    s.running_cpus = 0.1;
    s.since_start_failure = 10ms;
    s.start_failures = 1;
    auto d = ad::decide_growth(s);
    BOOST_TEST(d.start == 0u);
    BOOST_TEST((d.recheck_after == ad::growth_policy::start_failure_backoff - 10ms));
    s.since_start_failure = 300ms;
    s.max_threads = 4; // the cap lowered to the threads there are
    s.cap_lifts_after = 700ms;
    d = ad::decide_growth(s);
    BOOST_TEST(d.start == 0u);
    BOOST_TEST((d.recheck_after == 700ms));
}

BOOST_AUTO_TEST_CASE(growth_with_cpu_figures_stays_within_the_thread_limits)
{
    ad::growth_snapshot s = slow_backlog();
    s.running_cpus = 0;
    s.max_threads = 5;
    BOOST_TEST(ad::decide_growth(s).start == 1u);
    s.max_threads = 4;
    BOOST_TEST(ad::decide_growth(s).start == 0u);
    s.max_threads = 64;
    s.queued = 1; // one waiting call needs one thread
    BOOST_TEST(ad::decide_growth(s).start == 1u);
}

// ---------------------------------------------------------------------------------------------
// Growth with CPU figures: real threads (outcomes with generous margins, no timings)

BOOST_AUTO_TEST_CASE(a_cpu_bound_backlog_never_runs_on_more_than_cpu_limit_plus_two_threads)
{
    ab::blocking_pool pool({.max_threads = 64, .cpu_limit = 2});
    std::vector<std::future<void>> calls;
    for (int i = 0; i < 150; ++i)
        calls.push_back(ab::async_blocking(
            pool.get_executor(),
            [] {
                // 2 ms of this thread's CPU time, however often it is preempted.
                const auto clock = ad::thread_cpu_clock::of(pthread_self()).value();
                const auto until = clock.used().value_or(0ns) + 2ms;
                volatile unsigned long sink = 0;
                while (clock.used().value_or(until) < until)
                    for (int k = 0; k < 1000; ++k)
                        sink = sink + 1;
            },
            boost::asio::use_future));
    for (auto& c : calls)
        c.get();
    BOOST_TEST(pool.metrics().peak_threads <= 4u);
}

BOOST_AUTO_TEST_CASE(sleeping_calls_grow_the_pool_past_cpu_limit_to_max_threads)
{
    ab::blocking_pool pool({.max_threads = 16, .cpu_limit = 1});
    test::gate gate;
    std::vector<std::future<void>> calls;
    for (int i = 0; i < 32; ++i)
        calls.push_back(ab::async_blocking(
            pool.get_executor(), [&] { gate.wait(); }, boost::asio::use_future));
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 16; }));
    BOOST_TEST(pool.metrics().threads == 16u);
    gate.open();
    for (auto& c : calls)
        c.get();
}

BOOST_AUTO_TEST_CASE(calls_that_start_blocking_after_computing_grow_the_pool)
{
    ab::blocking_pool pool({.max_threads = 8, .cpu_limit = 1});
    test::gate gate;
    std::vector<std::future<void>> calls;
    for (int i = 0; i < 8; ++i)
        calls.push_back(ab::async_blocking(
            pool.get_executor(),
            [&] {
                const auto clock = ad::thread_cpu_clock::of(pthread_self()).value();
                const auto until = clock.used().value_or(0ns) + 20ms;
                volatile unsigned long sink = 0;
                while (clock.used().value_or(until) < until)
                    for (int k = 0; k < 1000; ++k)
                        sink = sink + 1;
                gate.wait();
            },
            boost::asio::use_future));
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 8; }));
    gate.open();
    for (auto& c : calls)
        c.get();
}

BOOST_AUTO_TEST_CASE(cpu_bound_running_counts_a_computing_call_while_calls_wait)
{
    ab::blocking_pool pool({.max_threads = 4, .cpu_limit = 1});
    std::atomic<bool> stop{false};
    auto computing = ab::async_blocking(
        pool.get_executor(),
        [&] {
            volatile unsigned long sink = 0;
            while (!stop.load(std::memory_order_relaxed))
                sink = sink + 1;
        },
        boost::asio::use_future);
    auto waiting = ab::async_blocking(
        pool.get_executor(), [] {}, boost::asio::use_future);
    BOOST_TEST(test::eventually([&] { return pool.metrics().cpu_bound_running == 1; }));
    const auto m = pool.metrics();
    stop = true;
    computing.get();
    waiting.get();
    BOOST_TEST(m.threads == 1u); // the one CPU it may use is taken: nothing to gain from a second
}

BOOST_AUTO_TEST_CASE(a_failed_thread_start_lowers_effective_max_threads_until_it_recovers)
{
    ab::blocking_pool pool({.max_threads = 8});
    test::gate gate;
    std::vector<std::future<void>> calls;
    calls.push_back(ab::async_blocking(
        pool.get_executor(), [&] { gate.wait(); }, boost::asio::use_future));
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    ad::inject_thread_start_failures = 1;
    for (int i = 0; i < 7; ++i)
        calls.push_back(ab::async_blocking(
            pool.get_executor(), [&] { gate.wait(); }, boost::asio::use_future));
    std::size_t lowest = 8;
    BOOST_TEST(test::eventually([&] {
        const auto m = pool.metrics();
        lowest = std::min(lowest, m.effective_max_threads);
        return m.thread_start_failures == 1 && gate.waiting() == 8;
    }));
    BOOST_TEST(lowest < 8u); // lowered after the failure, then lifted: all 8 calls run at once
    BOOST_TEST(pool.metrics().effective_max_threads == 8u);
    ad::inject_thread_start_failures = 0;
    gate.open();
    for (auto& c : calls)
        c.get();
}

// ---------------------------------------------------------------------------------------------
// Metrics

BOOST_AUTO_TEST_CASE(metrics_print_effective_max_threads_and_cpu_bound_running)
{
    ab::pool_metrics m;
    m.effective_max_threads = 37;
    m.cpu_bound_running = 3;
    std::ostringstream text;
    text << m;
    BOOST_TEST(text.str().find("effective_max_threads=37") != std::string::npos);
    BOOST_TEST(text.str().find("cpu_bound_running=3") != std::string::npos);
    const std::string json = ab::to_json(m);
    BOOST_TEST(json.find("\"effective_max_threads\":37") != std::string::npos);
    BOOST_TEST(json.find("\"cpu_bound_running\":3") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
