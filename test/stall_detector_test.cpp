// Tests of stall_detector: what counts as a stall, what a report holds, and when none is made.
#include <asio_blocking/stall_detector.hpp>

#include "../src/stall_detector_probe.hpp"

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
using asio_blocking::stall_detector;
using asio_blocking::stall_options;
using asio_blocking::stall_report;
using namespace std::chrono_literals;

namespace {

// The blocking calls whose names the reports must show. Not inlined, and not tail calls.
std::atomic<int> blocking_calls{0};

[[gnu::noinline]] void stall_test_sleep_on_the_loop(std::chrono::milliseconds d)
{
    std::this_thread::sleep_for(d);
    blocking_calls.fetch_add(1);
}

// A one-shot gate. A condition variable, not std::latch: ThreadSanitizer delivers a signal to
// a thread blocked in pthread_cond_wait at once, but to one blocked in the raw futex call
// behind std::latch only when the call returns.
class gate {
public:
    void open()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        open_ = true;
        opened_.notify_all();
    }
    void wait()
    {
        std::unique_lock<std::mutex> lock(mutex_);
        opened_.wait(lock, [&] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable opened_;
    bool open_ = false;
};

[[gnu::noinline]] void stall_test_wait_for_release(gate& release)
{
    release.wait();
    blocking_calls.fetch_add(1);
}

template <typename Predicate>
bool eventually(Predicate p, std::chrono::steady_clock::duration limit = 30s)
{
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!p()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Collects the reports made on the detector's thread.
struct report_log {
    mutable std::mutex mutex;
    std::vector<stall_report> reports;

    std::function<void(const stall_report&)> callback()
    {
        return [this](const stall_report& r) {
            std::lock_guard<std::mutex> lock(mutex);
            reports.push_back(r);
        };
    }
    std::vector<stall_report> snapshot() const
    {
        std::lock_guard<std::mutex> lock(mutex);
        return reports;
    }
    std::size_t size() const { return snapshot().size(); }
};

// The first report, for failure messages.
std::string describe(const std::vector<stall_report>& reports)
{
    if (reports.empty())
        return "no report";
    std::string text =
        "first report: thread \"" + reports.front().thread_name + "\", " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(reports.front().duration).count()) + " ms";
    for (const std::string& frame : reports.front().stack)
        text += "\n  " + frame.substr(0, 160);
    return text;
}

bool names(const stall_report& r, const std::string& function)
{
    return std::any_of(r.stack.begin(), r.stack.end(),
                       [&](const std::string& frame) { return frame.find(function) != std::string::npos; });
}

// An io_context run by `threads` named threads, kept running by a work guard.
struct running_loop {
    asio::io_context ctx;
    asio::executor_work_guard<asio::io_context::executor_type> guard{ctx.get_executor()};
    std::vector<std::thread> threads;

    explicit running_loop(int count = 1)
    {
        for (int i = 0; i < count; ++i)
            threads.emplace_back([this, i] {
                pthread_setname_np(pthread_self(), ("loop" + std::to_string(i)).c_str());
                ctx.run();
            });
    }
    ~running_loop()
    {
        guard.reset();
        ctx.stop();
        for (auto& t : threads)
            t.join();
    }
};

// Made from a handler, the detector knows at once that the loop runs and on which thread.
std::unique_ptr<stall_detector> make_on_loop(asio::io_context& ctx, stall_options options)
{
    std::promise<std::unique_ptr<stall_detector>> made;
    asio::post(ctx, [&] { made.set_value(std::make_unique<stall_detector>(ctx, std::move(options))); });
    return made.get_future().get();
}

std::string this_thread_name()
{
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    return name;
}

} // namespace

BOOST_AUTO_TEST_SUITE(stall_detector_test)

BOOST_AUTO_TEST_CASE(a_threshold_that_is_not_positive_is_rejected_naming_the_field)
{
    asio::io_context ctx;
    for (auto bad : {std::chrono::steady_clock::duration::zero(), std::chrono::steady_clock::duration(-1)}) {
        try {
            stall_detector d(ctx, {.threshold = bad});
            BOOST_FAIL("no exception");
        } catch (const std::invalid_argument& e) {
            BOOST_TEST(std::string(e.what()).find("threshold") != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_handler_blocking_200ms_is_one_stall_whose_stack_names_the_blocking_function)
{
    running_loop loop;
    report_log log;
    auto detector = make_on_loop(loop.ctx, {.threshold = 20ms, .on_stall = log.callback()});
    std::atomic<bool> finished{false};
    asio::post(loop.ctx, [&] {
        stall_test_sleep_on_the_loop(200ms);
        finished = true;
    });
    BOOST_TEST_REQUIRE(eventually([&] { return finished.load() && detector->longest_stall() > 0s; }));
    BOOST_TEST_REQUIRE(eventually([&] { return log.size() > 0; })); // symbolizing takes a while
    BOOST_TEST(detector->stalls() == 1u);
    BOOST_TEST(detector->longest_stall() >= 150ms);
    auto reports = log.snapshot();
    BOOST_TEST_REQUIRE(!reports.empty());
    BOOST_TEST(reports.front().duration >= 20ms);
    BOOST_TEST(reports.front().thread_name == "loop0");
    BOOST_TEST(std::any_of(reports.begin(), reports.end(),
                           [](const stall_report& r) { return names(r, "stall_test_sleep_on_the_loop"); }),
               "no report names the blocking function; first stack:\n"
                   << (reports.front().stack.empty() ? std::string("(empty)") : reports.front().stack.front()));
}

BOOST_AUTO_TEST_CASE(a_hung_handler_is_reported_again_each_time_the_stall_doubles)
{
    running_loop loop;
    report_log log;
    auto detector = make_on_loop(loop.ctx, {.threshold = 20ms, .capture_stack = false, .on_stall = log.callback()});
    std::atomic<bool> finished{false};
    asio::post(loop.ctx, [&] {
        stall_test_sleep_on_the_loop(1000ms);
        finished = true;
    });
    BOOST_TEST_REQUIRE(eventually([&] { return finished.load() && detector->longest_stall() > 0s; }));
    auto reports = log.snapshot();
    BOOST_TEST(reports.size() > 1u);
    BOOST_TEST(reports.size() <= std::size_t(std::log2(1000.0 / 20.0) + 2));
    for (std::size_t i = 1; i < reports.size(); ++i)
        BOOST_TEST(reports[i].duration > reports[i - 1].duration);
    BOOST_TEST(detector->stalls() == 1u);
    BOOST_TEST(detector->longest_stall() >= 900ms);
}

BOOST_AUTO_TEST_CASE(short_handlers_for_two_seconds_are_never_a_stall)
{
    running_loop loop;
    report_log log;
    auto detector = make_on_loop(loop.ctx, {.threshold = 200ms, .on_stall = log.callback()});
    // A chain of short handlers, each reposting the next, keeps the loop busy but responsive.
    auto until = std::chrono::steady_clock::now() + 2s;
    std::atomic<bool> done{false};
    std::function<void()> step = [&] {
        volatile unsigned sum = 0;
        for (unsigned i = 0; i < 1000; ++i)
            sum = sum + i;
        if (std::chrono::steady_clock::now() < until)
            asio::post(loop.ctx, step);
        else
            done = true;
    };
    asio::post(loop.ctx, step);
    BOOST_TEST_REQUIRE(eventually([&] { return done.load(); }));
    BOOST_TEST(log.size() == 0u);
    BOOST_TEST(detector->stalls() == 0u);
}

BOOST_AUTO_TEST_CASE(an_idle_loop_is_never_a_stall)
{
    running_loop loop;
    report_log log;
    stall_detector detector(loop.ctx, {.threshold = 20ms, .on_stall = log.callback()});
    // The heartbeat runs on the idle loop: the detector is watching it.
    BOOST_TEST_REQUIRE(
        eventually([&] { return !asio_blocking::detail::stall_detector_probe::watched_threads(detector).empty(); }));
    std::this_thread::sleep_for(1s); // an observation window: 50 thresholds of idling
    BOOST_TEST(log.size() == 0u, describe(log.snapshot()));
    BOOST_TEST(detector.stalls() == 0u);
}

BOOST_AUTO_TEST_CASE(a_loop_never_run_is_never_a_stall)
{
    asio::io_context ctx;
    report_log log;
    stall_detector detector(ctx, {.threshold = 20ms, .on_stall = log.callback()});
    std::this_thread::sleep_for(500ms); // an observation window: 25 thresholds
    BOOST_TEST(log.size() == 0u);
    BOOST_TEST(detector.stalls() == 0u);
}

BOOST_AUTO_TEST_CASE(a_stopped_loop_is_never_a_stall)
{
    report_log log;
    asio::io_context ctx;
    auto work = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run(); });
    stall_detector detector(ctx, {.threshold = 20ms, .on_stall = log.callback()});
    BOOST_TEST_REQUIRE(
        eventually([&] { return !asio_blocking::detail::stall_detector_probe::watched_threads(detector).empty(); }));
    ctx.stop();
    runner.join();
    std::this_thread::sleep_for(500ms); // an observation window: 25 thresholds
    BOOST_TEST(log.size() == 0u);
    BOOST_TEST(detector.stalls() == 0u);
}

BOOST_AUTO_TEST_CASE(the_detector_does_not_keep_run_from_returning)
{
    asio::io_context ctx;
    stall_detector detector(ctx, {.threshold = 20ms});
    bool ran = false;
    asio::post(ctx, [&] { ran = true; });
    // If the heartbeat counted as work, run_for would run until its limit and leave the
    // context unstopped.
    ctx.run_for(30s);
    BOOST_TEST(ran);
    BOOST_TEST(ctx.stopped());
}

BOOST_AUTO_TEST_CASE(destroying_the_detector_during_a_stall_returns_promptly_and_no_report_follows)
{
    running_loop loop;
    report_log log;
    gate release;
    auto detector = make_on_loop(loop.ctx, {.threshold = 20ms, .on_stall = log.callback()});
    asio::post(loop.ctx, [&] { stall_test_wait_for_release(release); });
    BOOST_TEST_REQUIRE(eventually([&] { return log.size() >= 1; }));
    auto before = std::chrono::steady_clock::now();
    detector.reset(); // the stall goes on: the handler waits for `release`
    auto took = std::chrono::steady_clock::now() - before;
    std::size_t reports = log.size();
    std::this_thread::sleep_for(300ms); // an observation window: the stall goes on for 15 thresholds
    BOOST_TEST(log.size() == reports);
    release.open();
    BOOST_TEST(took < 5s);
}

BOOST_AUTO_TEST_CASE(an_exception_from_on_stall_is_caught_and_watching_goes_on)
{
    running_loop loop;
    std::atomic<int> calls{0};
    auto detector =
        make_on_loop(loop.ctx, {.threshold = 20ms, .capture_stack = false, .on_stall = [&](const stall_report&) {
                                    calls.fetch_add(1);
                                    throw std::runtime_error("on_stall failed (expected by the test)");
                                }});
    gate release;
    asio::post(loop.ctx, [&] { stall_test_wait_for_release(release); });
    // Reported again after the first report threw: the stall doubled and was seen again.
    BOOST_TEST(eventually([&] { return calls.load() >= 2; }));
    release.open();
    BOOST_TEST_REQUIRE(eventually([&] { return detector->longest_stall() > 0s; }));
    BOOST_TEST(detector->stalls() == 1u);
}

BOOST_AUTO_TEST_CASE(without_capture_stack_a_stall_is_reported_with_its_thread_and_no_stack)
{
    running_loop loop;
    report_log log;
    auto detector = make_on_loop(loop.ctx, {.threshold = 20ms, .capture_stack = false, .on_stall = log.callback()});
    asio::post(loop.ctx, [&] { stall_test_sleep_on_the_loop(100ms); });
    BOOST_TEST_REQUIRE(eventually([&] { return detector->longest_stall() > 0s && log.size() > 0; }));
    auto reports = log.snapshot();
    BOOST_TEST(reports.front().thread_name == "loop0");
    BOOST_TEST(reports.front().stack.empty());
    BOOST_TEST(detector->stalls() == 1u);
}

// Semantics: a loop run by several threads is stalled when none of them can run a handler.
// Each watched thread inside run() at that moment is reported, with its own stack.
BOOST_AUTO_TEST_CASE(every_thread_of_a_multithreaded_loop_stalled_at_once_is_reported_with_its_stack)
{
    using asio_blocking::detail::stall_detector_probe;
    running_loop loop(2);
    report_log log;
    auto detector = make_on_loop(loop.ctx, {.threshold = 20ms, .on_stall = log.callback()});
    const auto watched = stall_detector_probe::watched_threads(*detector); // at least the thread that made it
    BOOST_TEST_REQUIRE(!watched.empty());
    // Two handlers meet at a barrier, so they occupy both threads. The one on the watched
    // thread stays blocked; the other returns, leaving the heartbeat to the thread not yet
    // watched. One thread blocked is no stall.
    gate release;
    std::barrier<> both_running(2);
    std::latch first_blocked(1), second_blocked(1);
    std::string first_name, second_name;
    for (int i = 0; i < 2; ++i)
        asio::post(loop.ctx, [&] {
            both_running.arrive_and_wait();
            if (gettid() != watched.front())
                return;
            first_name = this_thread_name();
            first_blocked.count_down();
            stall_test_wait_for_release(release);
        });
    first_blocked.wait();
    BOOST_TEST_REQUIRE(eventually([&] { return stall_detector_probe::watched_threads(*detector).size() == 2; }));
    BOOST_TEST(log.size() == 0u);
    // Now block the other thread too: the whole loop is stalled.
    asio::post(loop.ctx, [&] {
        second_name = this_thread_name();
        second_blocked.count_down();
        stall_test_wait_for_release(release);
    });
    second_blocked.wait();
    auto reported_with_stack = [&](const std::string& thread) {
        auto reports = log.snapshot();
        return std::any_of(reports.begin(), reports.end(), [&](const stall_report& r) {
            return r.thread_name == thread && names(r, "stall_test_wait_for_release");
        });
    };
    BOOST_TEST_REQUIRE(first_name != second_name);
    BOOST_TEST(eventually([&] { return reported_with_stack(first_name) && reported_with_stack(second_name); }));
    BOOST_TEST(detector->stalls() == 1u);
    release.open();
    BOOST_TEST(eventually([&] { return detector->longest_stall() > 0s; }));
}

BOOST_AUTO_TEST_SUITE_END()
