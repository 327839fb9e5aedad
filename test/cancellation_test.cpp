// Per-operation cancellation, timeouts with awaitable operators, staged shutdown, lifetimes.
#include <asio_blocking.hpp>

#include "test_support.hpp"

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
#include <random>
#include <thread>

namespace asio = boost::asio;
namespace ab = asio_blocking;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

bool is_aborted(const std::exception_ptr& e)
{
    return test::code_of(e) == asio::error::operation_aborted;
}

/// Records one completion of a void(exception_ptr, int) call.
struct outcome {
    int calls = 0;
    std::exception_ptr error;
    int value = -1;
    auto handler()
    {
        return [this](std::exception_ptr e, int v) {
            ++calls;
            error = e;
            value = v;
        };
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(cancellation_test)

BOOST_AUTO_TEST_CASE(cancelling_a_queued_call_removes_it_and_fn_never_runs)
{
    for (auto type :
         {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
        asio::io_context io;
        ab::blocking_pool pool({.max_threads = 1});
        test::gate gate;
        auto busy = ab::async_blocking(
            pool.get_executor(), [&] { gate.wait(); }, asio::use_future);
        BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));

        auto witness = std::make_shared<int>(0);
        std::atomic<bool> ran{false};
        asio::cancellation_signal signal;
        outcome out;
        ab::async_blocking(
            pool, io.get_executor(),
            [&ran, witness] {
                ran = true;
                return 1;
            },
            asio::bind_cancellation_slot(signal.slot(), out.handler()));
        BOOST_TEST(pool.metrics().queued == 1u);
        signal.emit(type);
        BOOST_TEST(pool.metrics().queued == 0u); // its slot is free at once
        BOOST_TEST(witness.use_count() == 1);    // fn destroyed
        BOOST_TEST(out.calls == 0);              // never inside emit
        io.run();
        BOOST_TEST(out.calls == 1);
        BOOST_TEST(is_aborted(out.error));
        gate.open();
        busy.get();
        pool.join();
        BOOST_TEST(!ran.load());
        BOOST_TEST(pool.metrics().cancelled == 1u);
    }
}

BOOST_AUTO_TEST_CASE(terminal_cancellation_of_a_running_call_completes_at_once_and_abandons_fn)
{
    asio::io_context io;
    ab::blocking_pool pool;
    test::gate gate;
    std::atomic<bool> finished{false};
    asio::cancellation_signal signal;
    outcome out;
    ab::async_blocking(
        pool, io.get_executor(),
        [&] {
            gate.wait();
            finished = true;
            return 5;
        },
        asio::bind_cancellation_slot(signal.slot(), out.handler()));
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    signal.emit(asio::cancellation_type::terminal);
    BOOST_TEST(test::run_until(io, [&] { return out.calls == 1; }));
    BOOST_TEST(is_aborted(out.error));
    BOOST_TEST(!finished.load()); // fn still running, detached
    BOOST_TEST(pool.metrics().abandoned == 1u);
    signal.emit(asio::cancellation_type::terminal); // after completion: a no-op
    gate.open();
    BOOST_TEST(test::eventually([&] { return pool.metrics().busy_threads == 0; }));
    io.restart();
    io.poll();
    BOOST_TEST(out.calls == 1); // the late result was discarded
    BOOST_TEST(finished.load());
}

BOOST_AUTO_TEST_CASE(io_context_run_waits_for_the_handler_of_a_call_abandoned_while_running)
{
    // The abandoned call's completion is posted while fn still runs: the io_context's work,
    // which its registry keeps for the call, is given back only once that post is made.
    for (int round = 0; round < 20; ++round) {
        test::gate gate; // outlives the pool, whose worker may still be leaving it
        asio::io_context io;
        ab::blocking_pool pool;
        asio::cancellation_signal signal;
        outcome out;
        ab::async_blocking(
            pool, io.get_executor(), [&] { return gate.wait() ? 5 : 0; },
            asio::bind_cancellation_slot(signal.slot(), out.handler()));
        std::thread canceller([&] {
            test::eventually([&] { return gate.waiting() == 1; });
            signal.emit(asio::cancellation_type::terminal); // while run() waits, holding no handler
        });
        io.run();
        canceller.join();
        BOOST_TEST_REQUIRE(out.calls == 1);
        BOOST_TEST(is_aborted(out.error));
        gate.open();
        BOOST_TEST(test::eventually([&] { return pool.metrics().busy_threads == 0; }));
    }
}

BOOST_AUTO_TEST_CASE(total_cancellation_is_not_honoured_once_fn_runs)
{
    asio::io_context io;
    ab::blocking_pool pool;
    test::gate gate;
    asio::cancellation_signal signal;
    outcome out;
    ab::async_blocking(
        pool, io.get_executor(),
        [&] {
            gate.wait();
            return 8;
        },
        asio::bind_cancellation_slot(signal.slot(), out.handler()));
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    signal.emit(asio::cancellation_type::total);
    gate.open();
    io.run();
    BOOST_TEST(out.calls == 1);
    BOOST_TEST(!out.error);
    BOOST_TEST(out.value == 8);
}

BOOST_AUTO_TEST_CASE(stop_token_aware_fn_returns_early_on_cancellation)
{
    asio::io_context io;
    ab::blocking_pool pool;
    std::atomic<bool> started{false}, saw_stop{false};
    asio::cancellation_signal signal;
    outcome out;
    ab::async_blocking(
        pool, io.get_executor(),
        [&](std::stop_token st) {
            started = true;
            std::mutex m;
            std::condition_variable_any cv;
            std::unique_lock lk(m);
            saw_stop = cv.wait_for(lk, st, test::patience, [] { return false; }) == false && st.stop_requested();
            return 1;
        },
        asio::bind_cancellation_slot(signal.slot(), out.handler()));
    BOOST_TEST(test::eventually([&] { return started.load(); }));
    signal.emit(asio::cancellation_type::partial);
    BOOST_TEST(test::run_until(io, [&] { return out.calls == 1; }));
    BOOST_TEST(is_aborted(out.error));
    BOOST_TEST(test::eventually([&] { return pool.metrics().busy_threads == 0; }));
    BOOST_TEST(saw_stop.load());
}

namespace {

// A timeout that starts once `started` is set: on a slow machine a fixed timer may fire before
// fn has started, and then cancels a queued call instead of abandoning a running one.
asio::awaitable<void> timeout_after_start(const std::atomic<bool>& started, std::chrono::milliseconds timeout)
{
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!started) {
        timer.expires_after(1ms);
        co_await timer.async_wait(asio::use_awaitable);
    }
    timer.expires_after(timeout);
    co_await timer.async_wait(asio::use_awaitable);
}

} // namespace

BOOST_AUTO_TEST_CASE(timeout_with_awaitable_operators_completes_when_the_timer_fires)
{
    asio::io_context io;
    // The worker starts late, as on a loaded machine: the timeout must still find fn running.
    ab::blocking_pool pool({.on_thread_start = [] {
        std::this_thread::sleep_for(50ms);
    }});
    test::gate gate;
    std::atomic<bool> started{false};
    std::optional<std::size_t> winner;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            auto r = co_await (ab::async_blocking(
                                   pool, ex,
                                   [&] {
                                       started = true;
                                       gate.wait();
                                       return 1;
                                   },
                                   asio::use_awaitable) ||
                               timeout_after_start(started, 20ms));
            winner = r.index();
        },
        asio::detached);
    BOOST_TEST(test::run_until(io, [&] { return winner.has_value(); }));
    BOOST_TEST(*winner == 1u); // the timer, although fn is still running
    BOOST_TEST(pool.metrics().abandoned == 1u);
    gate.open();
}

BOOST_AUTO_TEST_CASE(timeout_with_awaitable_operators_lets_a_fast_call_win)
{
    asio::io_context io;
    ab::blocking_pool pool;
    std::optional<std::variant<int, std::monostate>> result;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            asio::steady_timer timer(ex, test::patience);
            auto r = co_await (ab::async_blocking(
                                   pool, ex, [] { return 42; }, asio::use_awaitable) ||
                               timer.async_wait(asio::use_awaitable));
            result = r;
        },
        asio::detached);
    io.run(); // the timer is cancelled by ||, so run returns promptly
    BOOST_TEST_REQUIRE(result.has_value());
    BOOST_TEST(result->index() == 0u);
    BOOST_TEST(std::get<0>(*result) == 42);
}

BOOST_AUTO_TEST_CASE(timeout_cancels_a_queued_call_that_then_never_runs)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 1});
    test::gate gate;
    auto busy = ab::async_blocking(
        pool.get_executor(), [&] { gate.wait(); }, asio::use_future);
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    std::atomic<bool> ran{false};
    bool timed_out = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            asio::steady_timer timer(ex, 10ms);
            auto r = co_await (ab::async_blocking(
                                   pool, ex, [&] { ran = true; }, asio::use_awaitable) ||
                               timer.async_wait(asio::use_awaitable));
            timed_out = r.index() == 1;
        },
        asio::detached);
    io.run();
    BOOST_TEST(timed_out);
    BOOST_TEST(pool.metrics().queued == 0u);
    gate.open();
    busy.get();
    pool.join();
    BOOST_TEST(!ran.load());
}

BOOST_AUTO_TEST_CASE(parallel_group_wait_for_one_cancels_the_loser)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 2});
    test::gate gate;
    bool done = false;
    asio::experimental::make_parallel_group(ab::async_blocking(
                                                pool, io.get_executor(), [] { return 1; }, asio::deferred),
                                            ab::async_blocking(
                                                pool, io.get_executor(),
                                                [&] {
                                                    gate.wait();
                                                    return 2;
                                                },
                                                asio::deferred))
        .async_wait(asio::experimental::wait_for_one(),
                    [&](std::array<std::size_t, 2> order, std::exception_ptr e1, int v1, std::exception_ptr e2, int) {
                        done = order[0] == 0 && !e1 && v1 == 1 && is_aborted(e2);
                    });
    BOOST_TEST(test::run_until(io, [&] { return done; }));
    gate.open();
}

BOOST_AUTO_TEST_CASE(cancellation_racing_completion_ends_in_exactly_one_completion)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 2});
    std::mt19937 rng(7);
    const int rounds = test::rounds(2000);
    int aborted = 0, completed = 0;
    for (int i = 0; i < rounds; ++i) {
        asio::cancellation_signal signal;
        outcome out;
        const int spin = static_cast<int>(rng() % 2000);
        ab::async_blocking(
            pool, io.get_executor(),
            [spin] {
                volatile int x = 0;
                for (int k = 0; k < spin; ++k)
                    x = x + k;
                return 1;
            },
            asio::bind_cancellation_slot(signal.slot(), out.handler()));
        const auto type = (i % 3 == 0)   ? asio::cancellation_type::terminal
                          : (i % 3 == 1) ? asio::cancellation_type::partial
                                         : asio::cancellation_type::total;
        const int delay = static_cast<int>(rng() % 50);
        std::this_thread::sleep_for(std::chrono::microseconds(delay)); // the race's timing, varied
        signal.emit(type);
        BOOST_REQUIRE(test::run_until(io, [&] { return out.calls >= 1; }));
        io.restart();
        io.poll();
        BOOST_REQUIRE_EQUAL(out.calls, 1);
        if (out.error) {
            BOOST_REQUIRE(is_aborted(out.error));
            ++aborted;
        } else {
            BOOST_REQUIRE_EQUAL(out.value, 1);
            ++completed;
        }
    }
    BOOST_TEST_MESSAGE("aborted " << aborted << ", completed " << completed);
    BOOST_TEST(test::eventually([&] { return pool.metrics().busy_threads == 0; }));
    const auto m = pool.metrics();
    BOOST_TEST(m.completed + m.failed + m.cancelled == m.submitted);
}

BOOST_AUTO_TEST_CASE(stop_aborts_queued_calls_and_lets_running_ones_deliver)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 1});
    test::gate gate;
    std::atomic<bool> stop_seen{false};
    outcome running, queued, after;
    ab::async_blocking(
        pool, io.get_executor(),
        [&](std::stop_token st) {
            gate.wait();
            stop_seen = st.stop_requested();
            return 1;
        },
        running.handler());
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    ab::async_blocking(
        pool, io.get_executor(), [] { return 2; }, queued.handler());
    pool.stop();
    ab::async_blocking(
        pool, io.get_executor(), [] { return 3; }, after.handler());
    BOOST_TEST(after.calls == 0); // not inline
    gate.open();
    io.run();
    BOOST_TEST(running.calls == 1);
    BOOST_TEST(!running.error);
    BOOST_TEST(running.value == 1);
    BOOST_TEST(stop_seen.load());
    BOOST_TEST(queued.calls == 1);
    BOOST_TEST(is_aborted(queued.error));
    BOOST_TEST(after.calls == 1);
    BOOST_TEST(is_aborted(after.error));
    pool.join();
    const auto m = pool.metrics();
    BOOST_TEST(m.completed + m.failed + m.cancelled + m.rejected == m.submitted);
}

BOOST_AUTO_TEST_CASE(stop_delivers_aborts_to_handlers_running_on_the_pool_itself)
{
    ab::blocking_pool pool({.max_threads = 1});
    test::gate gate;
    auto busy = ab::async_blocking(
        pool.get_executor(),
        [&] {
            gate.wait();
            return 1;
        },
        asio::use_future);
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    auto queued = ab::async_blocking(
        pool.get_executor(), [] { return 2; }, asio::use_future);
    pool.stop();
    gate.open();
    BOOST_TEST(busy.get() == 1);
    try {
        queued.get();
        BOOST_FAIL("expected operation_aborted");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == asio::error::operation_aborted));
    }
}

BOOST_AUTO_TEST_CASE(join_for_gives_up_on_a_hung_call)
{
    auto pool = std::make_unique<ab::blocking_pool>(ab::pool_options{.max_threads = 1});
    test::gate gate;
    auto hung = ab::async_blocking(
        pool->get_executor(),
        [&] {
            gate.wait();
            return 1;
        },
        asio::use_future);
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
    auto queued = ab::async_blocking(
        pool->get_executor(), [] { return 2; }, asio::use_future);
    BOOST_TEST(!pool->join_for(30ms));
    BOOST_CHECK_THROW(queued.get(), boost::system::system_error);
    pool.reset(); // does not wait for the hung call: its thread was left behind
    gate.open();
    BOOST_TEST(hung.get() == 1); // and it still delivers
}

BOOST_AUTO_TEST_CASE(join_for_reports_a_completed_drain)
{
    ab::blocking_pool pool;
    std::atomic<int> ran{0};
    for (int i = 0; i < 20; ++i)
        asio::post(pool, [&] { ++ran; });
    BOOST_TEST(pool.join_for(test::patience));
    BOOST_TEST(ran.load() == 20);
    BOOST_TEST(pool.metrics().threads == 0u);
}

BOOST_AUTO_TEST_CASE(stop_and_join_from_completion_handlers_and_jobs_do_not_deadlock)
{
    asio::io_context io;
    ab::blocking_pool pool;
    bool joined_from_handler = false;
    // From a handler on the io thread (not a pool thread): join works.
    ab::async_blocking(
        pool, io.get_executor(), [] { return 1; },
        [&](std::exception_ptr, int) {
            pool.stop();
            pool.join();
            joined_from_handler = true;
        });
    io.run();
    BOOST_TEST(joined_from_handler);

    ab::blocking_pool second;
    // From a handler running on the pool itself: stop works, join throws.
    auto f = ab::async_blocking(
        second.get_executor(), [] { return 1; }, asio::use_future);
    f.get();
    std::promise<std::string> result;
    ab::async_blocking(
        second.get_executor(), [] { return 1; },
        [&](std::exception_ptr, int) {
            second.stop();
            try {
                second.join();
                result.set_value("joined");
            } catch (const std::logic_error&) {
                result.set_value("logic_error");
            }
        });
    BOOST_TEST(result.get_future().get() == "logic_error");
}

BOOST_AUTO_TEST_CASE(destroying_the_callers_context_with_calls_pending_is_safe)
{
    ab::blocking_pool pool({.max_threads = 2}); // outlives the caller's context
    test::gate gate;
    auto in_handler = std::make_shared<int>(0);
    auto in_fn = std::make_shared<int>(0);
    {
        asio::io_context io;
        for (int i = 0; i < 6; ++i) // 2 running, 4 queued
            ab::async_blocking(
                pool, io.get_executor(),
                [&gate, in_fn] {
                    gate.wait();
                    return 1;
                },
                [in_handler](std::exception_ptr, int) { BOOST_FAIL("handler of a destroyed context ran"); });
        BOOST_TEST(test::eventually([&] { return gate.waiting() == 2; }));
        // io is destroyed without ever running: its pending handlers are destroyed now.
    }
    BOOST_TEST(in_handler.use_count() == 1);
    gate.open();
    BOOST_TEST(test::eventually([&] { return pool.metrics().busy_threads == 0 && pool.metrics().queued == 0; }));
    BOOST_TEST(in_fn.use_count() == 1);
    const auto m = pool.metrics();
    BOOST_TEST(m.completed + m.failed + m.cancelled == m.submitted);
}

BOOST_AUTO_TEST_CASE(destroying_the_callers_context_while_results_are_being_delivered_is_safe)
{
    ab::blocking_pool pool({.max_threads = 4});
    for (int round = 0; round < test::rounds(200); ++round) {
        auto witness = std::make_shared<int>(0);
        {
            asio::io_context io;
            for (int i = 0; i < 8; ++i)
                ab::async_blocking(
                    pool, io.get_executor(), [] { return 1; }, [witness](std::exception_ptr, int) {});
            io.poll(); // some may have completed already, most are in flight
        }
        BOOST_REQUIRE(test::eventually([&] { return witness.use_count() == 1; }));
    }
}

BOOST_AUTO_TEST_CASE(results_queued_on_a_context_destroyed_unrun_are_destroyed_with_it)
{
    // The completions sit in the io_context's queue (in the operations' own storage) when the
    // context is destroyed: handlers and results are destroyed then, once, and never run.
    // Both through io_context's own executor and through an any_io_executor around it.
    auto in_handler = std::make_shared<int>(0);
    auto in_result = std::make_shared<int>(0);
    {
        asio::io_context io;
        ab::blocking_pool pool;
        const asio::any_io_executor erased = io.get_executor();
        for (int i = 0; i < 4; ++i) {
            auto fn = [in_result] {
                return in_result;
            };
            auto handler = [in_handler](std::exception_ptr, std::shared_ptr<int>) {
                BOOST_FAIL("handler ran");
            };
            if (i % 2)
                ab::async_blocking(pool, io.get_executor(), fn, handler);
            else
                ab::async_blocking(pool, erased, fn, handler);
        }
        pool.join(); // every result has been handed to io, which never runs
        BOOST_TEST(in_result.use_count() == 5);
    }
    BOOST_TEST(in_handler.use_count() == 1);
    BOOST_TEST(in_result.use_count() == 1);
}

BOOST_AUTO_TEST_CASE(destroying_a_pool_destroys_every_queued_fn_and_handler_exactly_once)
{
    asio::io_context io;
    auto fn_witness = std::make_shared<int>(0);
    auto handler_witness = std::make_shared<int>(0);
    int aborted = 0;
    test::gate gate;
    std::thread opener;
    {
        ab::blocking_pool pool({.max_threads = 1});
        ab::async_blocking(
            pool, io.get_executor(),
            [&] {
                gate.wait();
                return 0;
            },
            [](std::exception_ptr, int) {});
        BOOST_TEST(test::eventually([&] { return gate.waiting() == 1; }));
        for (int i = 0; i < 10; ++i)
            ab::async_blocking(
                pool, io.get_executor(), [fn_witness] { return 1; },
                [handler_witness, &aborted](std::exception_ptr e, int) { aborted += is_aborted(e); });
        // stop() before the gate opens: opened first, the worker could take a queued call
        // before the destructor's stop() (seen under TSan), and that call would run.
        pool.stop();
        opener = std::thread([&] { gate.open(); });
    } // join
    opener.join();
    BOOST_TEST(fn_witness.use_count() == 1);
    io.run();
    BOOST_TEST(aborted == 10);
    BOOST_TEST(handler_witness.use_count() == 1);
}

BOOST_AUTO_TEST_CASE(a_refused_fn_whose_destructor_submits_does_not_deadlock)
{
    asio::io_context io;
    ab::blocking_pool pool;
    pool.stop();
    struct resubmits {
        ab::blocking_pool* pool;
        asio::io_context* io;
        bool armed = true;
        resubmits(ab::blocking_pool* p, asio::io_context* i)
            : pool(p)
            , io(i)
        {
        }
        resubmits(resubmits&& o) noexcept
            : pool(o.pool)
            , io(o.io)
            , armed(std::exchange(o.armed, false))
        {
        }
        ~resubmits()
        {
            if (armed)
                ab::async_blocking(
                    *pool, io->get_executor(), [] { return 0; }, asio::detached);
        }
        int operator()() const { return 1; }
    };
    int calls = 0;
    ab::async_blocking(pool, io.get_executor(), resubmits(&pool, &io),
                       [&](std::exception_ptr e, int) { calls += is_aborted(e); });
    io.run();
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(metrics_add_up_at_quiescence)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 2});
    test::gate gate;
    std::vector<asio::cancellation_signal> signals(40);
    for (int i = 0; i < 40; ++i)
        ab::async_blocking(
            pool, io.get_executor(),
            [&gate, i]() -> int {
                if (i < 2)
                    gate.wait();
                if (i % 5 == 0)
                    throw std::runtime_error("x");
                return i;
            },
            asio::bind_cancellation_slot(signals[i].slot(), [](std::exception_ptr, int) {}));
    BOOST_TEST(test::eventually([&] { return gate.waiting() == 2; }));
    for (int i = 10; i < 20; ++i)
        signals[i].emit(asio::cancellation_type::terminal);
    gate.open();
    io.run();
    const auto m = pool.metrics();
    BOOST_TEST(m.submitted == 40u);
    BOOST_TEST(m.cancelled == 10u);
    BOOST_TEST(m.failed == 6u); // 0, 5, 20, 25, 30, 35
    BOOST_TEST(m.completed == 24u);
    BOOST_TEST(m.queued == 0u);
    BOOST_TEST(m.busy_threads == 0u);
    BOOST_TEST(m.completed + m.failed + m.cancelled + m.rejected + m.expired == m.submitted);
}

BOOST_AUTO_TEST_SUITE_END()
