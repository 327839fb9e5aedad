// Bounded queue with both overflow policies, priorities and ageing, lanes, queue deadlines.
#include <asio_blocking.hpp>

#include "test_support.hpp"

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
#include <mutex>
#include <thread>

namespace asio = boost::asio;
namespace ab = asio_blocking;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(scheduling_test)

BOOST_AUTO_TEST_CASE(reject_policy_completes_with_queue_full_and_fn_never_runs)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 1, .queue_capacity = 2, .on_overflow = ab::overflow_policy::reject});
    test::busy_pool busy(pool, 1);
    std::atomic<int> ran{0};
    std::vector<boost::system::error_code> codes;
    for (int i = 0; i < 3; ++i)
        ab::async_blocking(
            pool, io.get_executor(),
            [&] {
                ++ran;
                return 0;
            },
            [&](std::exception_ptr e, int) { codes.push_back(test::code_of(e)); });
    BOOST_TEST(codes.empty()); // never inline
    io.poll();
    BOOST_TEST_REQUIRE(codes.size() == 1u);
    BOOST_TEST((codes[0] == ab::error::queue_full));
    BOOST_TEST(pool.metrics().rejected == 1u);
    busy.release();
    io.run();
    BOOST_TEST(ran.load() == 2);
    BOOST_TEST(codes.size() == 3u);

    // A plain post is refused with an exception.
    test::busy_pool busy2(pool, 1);
    asio::post(pool, [] {});
    asio::post(pool, [] {});
    BOOST_CHECK_THROW(asio::post(pool, [] {}), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(rejected_callers_retrying_after_the_load_clears_all_complete)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 2, .queue_capacity = 8, .on_overflow = ab::overflow_policy::reject});
    int done = 0, rejections = 0;
    std::function<void(int)> attempt = [&](int i) {
        ab::async_blocking(
            pool, io.get_executor(), [] { return 1; },
            [&, i](std::exception_ptr e, int) {
                if (test::code_of(e) == ab::error::queue_full) {
                    ++rejections;
                    asio::post(io, [&, i] { attempt(i); }); // retry later
                } else {
                    ++done;
                }
            });
    };
    for (int i = 0; i < 1000; ++i)
        attempt(i);
    io.run();
    BOOST_TEST(done == 1000);
    BOOST_TEST_MESSAGE("rejections: " << rejections);
    BOOST_TEST(pool.metrics().rejected == static_cast<std::uint64_t>(rejections));
}

BOOST_AUTO_TEST_CASE(wait_policy_suspends_the_caller_without_blocking_the_loop_and_admits_fifo)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 1, .queue_capacity = 2});
    test::busy_pool busy(pool, 1);
    std::mutex m;
    std::vector<int> order;
    int resumed = 0;
    for (int i = 0; i < 6; ++i)
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                co_await ab::async_blocking(
                    pool, co_await asio::this_coro::executor,
                    [&, i] {
                        std::lock_guard lk(m);
                        order.push_back(i);
                    },
                    asio::use_awaitable);
                ++resumed;
            },
            asio::detached);
    // The loop keeps running while four callers wait for room: a timer still fires.
    bool timer_fired = false;
    asio::steady_timer timer(io, 1ms);
    timer.async_wait([&](auto) { timer_fired = true; });
    BOOST_TEST(test::run_until(io, [&] { return timer_fired; }));
    auto metrics = pool.metrics();
    BOOST_TEST(metrics.queued == 2u);
    BOOST_TEST(metrics.waiting_admission == 4u);
    BOOST_TEST(resumed == 0);
    busy.release();
    io.restart();
    io.run();
    BOOST_TEST(resumed == 6);
    BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4, 5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cancelling_a_call_waiting_for_room_or_queued_frees_its_slot_at_once)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 1, .queue_capacity = 1});
    test::busy_pool busy(pool, 1);
    asio::cancellation_signal queued_signal, waiting_signal;
    int aborted = 0;
    auto count_abort = [&](std::exception_ptr e, int) {
        aborted += test::code_of(e) == asio::error::operation_aborted;
    };
    ab::async_blocking(
        pool, io.get_executor(), [] { return 1; }, asio::bind_cancellation_slot(queued_signal.slot(), count_abort));
    ab::async_blocking(
        pool, io.get_executor(), [] { return 2; }, asio::bind_cancellation_slot(waiting_signal.slot(), count_abort));
    BOOST_TEST(pool.metrics().waiting_admission == 1u);
    waiting_signal.emit(asio::cancellation_type::terminal);
    BOOST_TEST(pool.metrics().waiting_admission == 0u);
    queued_signal.emit(asio::cancellation_type::terminal);
    BOOST_TEST(pool.metrics().queued == 0u);
    // The freed slot takes a new call at once.
    int third = 0;
    ab::async_blocking(
        pool, io.get_executor(), [] { return 3; }, [&](std::exception_ptr, int v) { third = v; });
    BOOST_TEST(pool.metrics().queued == 1u);
    BOOST_TEST(pool.metrics().waiting_admission == 0u);
    busy.release();
    io.run();
    BOOST_TEST(aborted == 2);
    BOOST_TEST(third == 3);
}

BOOST_AUTO_TEST_CASE(plain_post_on_a_full_queue_blocks_the_poster_until_room_frees)
{
    ab::blocking_pool pool({.max_threads = 1, .queue_capacity = 1});
    test::busy_pool busy(pool, 1);
    asio::post(pool, [] {});
    std::atomic<bool> posted{false};
    std::thread poster([&] {
        asio::post(pool, [] {});
        posted = true;
    });
    BOOST_TEST(test::eventually([&] { return pool.metrics().queued == 1; }));
    BOOST_TEST(!posted.load()); // the queue is still full, so the poster is still blocked
    busy.release();
    poster.join();
    BOOST_TEST(posted.load());
}

BOOST_AUTO_TEST_CASE(a_pool_thread_posting_to_its_own_full_pool_does_not_deadlock)
{
    ab::blocking_pool pool({.max_threads = 1, .queue_capacity = 1});
    std::atomic<int> ran{0};
    std::promise<void> done;
    asio::post(pool, [&] {
        for (int i = 0; i < 5; ++i) // over capacity: admitted anyway, as it must not wait on itself
            asio::post(pool.get_executor(), [&] {
                if (++ran == 5)
                    done.set_value();
            });
    });
    BOOST_TEST((done.get_future().wait_for(test::patience) == std::future_status::ready));
}

BOOST_AUTO_TEST_CASE(higher_priority_starts_first_fifo_within_a_level)
{
    ab::blocking_pool pool({.max_threads = 1});
    test::busy_pool busy(pool, 1);
    std::mutex m;
    std::vector<std::string> order;
    auto ex_for = [&](ab::priority p) {
        return asio::require(pool.get_executor(), ab::with_priority(p));
    };
    std::vector<std::future<void>> calls;
    auto add = [&](ab::priority p, std::string name) {
        calls.push_back(ab::async_blocking(
            ex_for(p), pool.get_executor(),
            [&, name] {
                std::lock_guard lk(m);
                order.push_back(name);
            },
            asio::use_future));
    };
    add(ab::priority::low, "low1");
    add(ab::priority::normal, "normal1");
    add(ab::priority::high, "high1");
    add(ab::priority::low, "low2");
    add(ab::priority::high, "high2");
    asio::post(ex_for(ab::priority::high), [&] { // post carries a priority too
        std::lock_guard lk(m);
        order.push_back("high3");
    });
    add(ab::priority::normal, "normal2");
    BOOST_TEST(pool.metrics().queued_by_priority[2] == 3u);
    busy.release();
    for (auto& c : calls)
        c.get();
    pool.join();
    BOOST_TEST(order == (std::vector<std::string>{"high1", "high2", "high3", "normal1", "normal2", "low1", "low2"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_low_priority_call_under_a_high_priority_flood_starts_within_the_ageing_bound)
{
    ab::blocking_pool pool({.max_threads = 1});
    test::busy_pool busy(pool, 1);
    std::mutex m;
    std::vector<int> order; // -1 marks the low call
    auto high = asio::require(pool.get_executor(), ab::with_priority(ab::priority::high));
    auto low = asio::require(pool.get_executor(), ab::with_priority(ab::priority::low));
    asio::post(low, [&] {
        std::lock_guard lk(m);
        order.push_back(-1);
    });
    for (int i = 0; i < 100; ++i)
        asio::post(high, [&, i] {
            std::lock_guard lk(m);
            order.push_back(i);
        });
    busy.release();
    pool.join();
    const auto pos = std::find(order.begin(), order.end(), -1) - order.begin();
    BOOST_TEST_MESSAGE("low call started at dispatch " << pos);
    BOOST_TEST(pos <= static_cast<long>(2 * ab::priority_ageing_limit + 1));
    BOOST_TEST(pos >= static_cast<long>(ab::priority_ageing_limit)); // but high did go first
}

namespace {

/// Lets `pool` see one call finish in nanoseconds: from then on its calls are known to be tiny,
/// and plain calls may take the submission inbox rather than the pool's lock.
void finish_a_tiny_call(ab::blocking_pool& pool)
{
    ab::async_blocking(
        pool.get_executor(), pool.get_executor(), [] {}, asio::use_future)
        .get();
}

} // namespace

BOOST_AUTO_TEST_CASE(a_normal_call_submitted_behind_a_queued_low_one_still_starts_first)
{
    // Once calls are known to be tiny, a plain normal call may wait in the submission inbox
    // rather than the queue; a low call already queued must not start ahead of it.
    ab::blocking_pool pool({.max_threads = 1});
    finish_a_tiny_call(pool);
    test::busy_pool busy(pool, 1);
    std::mutex m;
    std::vector<std::string> order;
    auto record = [&](std::string name) {
        return [&, name] {
            std::lock_guard lk(m);
            order.push_back(name);
        };
    };
    auto low = asio::require(pool.get_executor(), ab::with_priority(ab::priority::low));
    // A fresh thread submits: none of its first calls is the one in 16 sampled (which takes the
    // pool's lock and so would hide the inbox).
    std::thread([&] {
        asio::post(low, record("low"));
        asio::post(pool.get_executor(), record("normal"));
    }).join();
    busy.release();
    BOOST_REQUIRE(test::eventually([&] {
        std::lock_guard lk(m);
        return order.size() == 2;
    }));
    BOOST_TEST(order == (std::vector<std::string>{"normal", "low"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_normal_call_submitted_behind_queued_high_ones_ages_like_a_queued_one)
{
    // A normal call waiting in the submission inbox must age with the starts of higher calls as
    // it would in the queue, not wait for every high call queued before it.
    ab::blocking_pool pool({.max_threads = 1});
    finish_a_tiny_call(pool);
    test::busy_pool busy(pool, 1);
    std::mutex m;
    std::vector<int> order; // -1 marks the normal call
    auto high = asio::require(pool.get_executor(), ab::with_priority(ab::priority::high));
    std::thread([&] { // fresh: see above
        for (int i = 0; i < 40; ++i)
            asio::post(high, [&, i] {
                std::lock_guard lk(m);
                order.push_back(i);
            });
        asio::post(pool.get_executor(), [&] {
            std::lock_guard lk(m);
            order.push_back(-1);
        });
    })
        .join();
    busy.release();
    // Not join() (nor metrics()): either would empty the inbox into the queue early.
    BOOST_REQUIRE(test::eventually([&] {
        std::lock_guard lk(m);
        return order.size() == 41;
    }));
    const auto pos = std::find(order.begin(), order.end(), -1) - order.begin();
    BOOST_TEST_MESSAGE("normal call started at dispatch " << pos);
    BOOST_TEST(pos <= static_cast<long>(2 * ab::priority_ageing_limit + 1));
}

BOOST_AUTO_TEST_CASE(a_lane_never_exceeds_its_limit_under_a_burst)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 16});
    ab::lane db(pool, 3, "db");
    std::atomic<int> running{0}, high_water{0};
    int done = 0;
    const int total = 10000;
    for (int i = 0; i < total; ++i)
        ab::async_blocking(
            db, io.get_executor(),
            [&] {
                const int now = ++running;
                int seen = high_water.load();
                while (now > seen && !high_water.compare_exchange_weak(seen, now)) {
                }
                std::this_thread::yield();
                --running;
                return 1;
            },
            [&](std::exception_ptr, int) { ++done; });
    io.run();
    BOOST_TEST(done == total);
    BOOST_TEST(high_water.load() <= 3);
    BOOST_TEST(high_water.load() >= 1);
    const ab::lane_metrics lm = db.metrics();
    BOOST_TEST(lm.name == "db");
    BOOST_TEST(lm.limit == 3u);
    BOOST_TEST(lm.completed == static_cast<std::uint64_t>(total));
    BOOST_TEST(lm.running == 0u);
    BOOST_TEST(lm.waiting == 0u);
    BOOST_TEST(lm.peak_running <= 3u);
}

BOOST_AUTO_TEST_CASE(a_full_lane_does_not_starve_another_lane_or_occupy_threads)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 4});
    ab::lane slow(pool, 1, "slow"), fast(pool, 2, "fast");
    test::gate gate;
    for (int i = 0; i < 5; ++i)
        ab::async_blocking(
            slow, io.get_executor(),
            [&] {
                gate.wait();
                return 0;
            },
            asio::detached);
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    BOOST_TEST(slow.metrics().waiting == 4u);
    BOOST_TEST(pool.metrics().busy_threads == 1u); // the waiting four hold no thread
    int fast_done = 0;
    for (int i = 0; i < 20; ++i)
        ab::async_blocking(
            fast, io.get_executor(), [] { return 1; }, [&](std::exception_ptr, int) { ++fast_done; });
    BOOST_TEST(test::run_until(io, [&] { return fast_done == 20; }));
    // Cancelling a call waiting in a lane works like any other queued call.
    asio::cancellation_signal signal;
    bool aborted = false;
    ab::async_blocking(
        slow, io.get_executor(), [] { return 0; },
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, int) {
            aborted = test::code_of(e) == asio::error::operation_aborted;
        }));
    signal.emit(asio::cancellation_type::terminal);
    BOOST_TEST(test::run_until(io, [&] { return aborted; }));
    slow.set_limit(5); // admits the waiting calls at once
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 4; }));
    gate.open();
}

BOOST_AUTO_TEST_CASE(calls_a_lane_lets_through_while_every_worker_is_blocked_still_get_threads)
{
    // Tiny calls first, so the pool has one thread and knows its calls are fast; then a lane's
    // raised limit queues calls while that thread is blocked: the pool must still grow for them.
    ab::blocking_pool pool({.max_threads = 4});
    for (int i = 0; i < 50; ++i)
        ab::async_blocking(
            pool.get_executor(), [] { return 1; }, asio::use_future)
            .get();
    BOOST_TEST(pool.metrics().threads == 1u);
    ab::lane l(pool, 1, "narrow");
    test::gate gate;
    std::vector<std::future<void>> calls;
    for (int i = 0; i < 3; ++i)
        calls.push_back(ab::async_blocking(
            l.get_executor(), pool.get_executor(), [&] { gate.wait(); }, asio::use_future));
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    BOOST_TEST(l.metrics().waiting == 2u);
    l.set_limit(3);
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 3; }));
    gate.open();
    for (auto& c : calls)
        c.get();
}

BOOST_AUTO_TEST_CASE(a_queue_deadline_expires_while_every_worker_is_blocked)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 1});
    test::busy_pool busy(pool, 1);
    std::atomic<bool> ran{false};
    boost::system::error_code code;
    bool called = false;
    auto bounded = asio::require(pool.get_executor(), ab::with_queue_timeout(20ms));
    ab::async_blocking(
        bounded, io.get_executor(),
        [&] {
            ran = true;
            return 1;
        },
        [&](std::exception_ptr e, int) {
            code = test::code_of(e);
            called = true;
        });
    // The worker stays blocked, yet the caller learns of the expiry (a timer drives it).
    BOOST_TEST(test::run_until(io, [&] { return called; }));
    BOOST_TEST((code == ab::error::deadline_expired));
    BOOST_TEST(pool.metrics().expired == 1u);
    BOOST_TEST(pool.metrics().queued == 0u);
    busy.release();
    pool.join();
    BOOST_TEST(!ran.load());
}

BOOST_AUTO_TEST_CASE(a_call_that_starts_in_time_is_unaffected_by_its_deadline)
{
    ab::blocking_pool pool;
    auto bounded = asio::require(pool.get_executor(), ab::with_queue_timeout(test::patience));
    BOOST_TEST(ab::async_blocking(
                   bounded, pool.get_executor(), [] { return 4; }, asio::use_future)
                   .get() == 4);
    BOOST_TEST(pool.metrics().expired == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
