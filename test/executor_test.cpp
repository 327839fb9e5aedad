// blocking_pool::executor_type conforms to Asio's executor requirements, like thread_pool's.
#include <asio_blocking/blocking_pool.hpp>

#include <asio_blocking.hpp>

#include "test_support.hpp"

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
#include <thread>

namespace asio = boost::asio;
namespace execution = boost::asio::execution;
namespace ab = asio_blocking;
using namespace std::chrono_literals;

using executor = ab::blocking_pool::executor_type;

static_assert(execution::is_executor<executor>::value);
static_assert(std::is_nothrow_copy_constructible_v<executor>);
static_assert(std::is_constructible_v<asio::any_io_executor, executor>);
static_assert(asio::can_query<executor, execution::context_t>::value);
static_assert(asio::can_require<executor, execution::blocking_t::never_t>::value);
static_assert(asio::can_require<executor, execution::outstanding_work_t::tracked_t>::value);
static_assert(asio::can_prefer<executor, execution::relationship_t::continuation_t>::value);
static_assert(asio::can_require<executor, ab::with_priority>::value);
static_assert(asio::can_query<executor, ab::with_priority>::value);
static_assert(asio::can_require<executor, ab::with_queue_timeout>::value);

BOOST_AUTO_TEST_SUITE(executor_test)

BOOST_AUTO_TEST_CASE(queries_report_the_executor_properties)
{
    ab::blocking_pool pool({.min_threads = 2});
    executor ex = pool.get_executor();
    BOOST_TEST(&asio::query(ex, execution::context) == &pool);
    BOOST_TEST((asio::query(ex, execution::blocking) == execution::blocking.possibly));
    BOOST_TEST((asio::query(ex, execution::relationship) == execution::relationship.fork));
    BOOST_TEST((asio::query(ex, execution::outstanding_work) == execution::outstanding_work.untracked));
    BOOST_TEST((asio::query(ex, execution::mapping) == execution::mapping.thread));
    BOOST_TEST((asio::query(ex, execution::allocator) == std::allocator<void>()));
    BOOST_TEST(test::eventually([&] { return asio::query(ex, execution::occupancy) == 2u; }));
    BOOST_TEST((asio::query(ex, ab::with_priority()) == ab::priority::normal));
    BOOST_TEST((asio::query(ex, ab::with_queue_timeout()) == std::chrono::steady_clock::duration::zero()));
}

BOOST_AUTO_TEST_CASE(require_and_prefer_change_exactly_one_property)
{
    ab::blocking_pool pool;
    executor ex = pool.get_executor();
    auto never = asio::require(ex, execution::blocking.never);
    BOOST_TEST((asio::query(never, execution::blocking) == execution::blocking.never));
    auto always = asio::require(ex, execution::blocking.always);
    BOOST_TEST((asio::query(always, execution::blocking) == execution::blocking.always));
    auto possibly = asio::require(never, execution::blocking.possibly);
    BOOST_TEST((asio::query(possibly, execution::blocking) == execution::blocking.possibly));
    auto cont = asio::prefer(ex, execution::relationship.continuation);
    BOOST_TEST((asio::query(cont, execution::relationship) == execution::relationship.continuation));
    BOOST_TEST((asio::query(asio::require(cont, execution::relationship.fork), execution::relationship) ==
                execution::relationship.fork));
    auto tracked = asio::require(ex, execution::outstanding_work.tracked);
    BOOST_TEST((asio::query(tracked, execution::outstanding_work) == execution::outstanding_work.tracked));
    BOOST_TEST(pool.metrics().outstanding_work == 1u);
    auto untracked = asio::require(tracked, execution::outstanding_work.untracked);
    BOOST_TEST((asio::query(untracked, execution::outstanding_work) == execution::outstanding_work.untracked));
    auto alloc = asio::require(ex, execution::allocator(std::allocator<int>()));
    BOOST_TEST((asio::query(alloc, execution::allocator) == std::allocator<int>()));
    auto high = asio::require(ex, ab::with_priority(ab::priority::high));
    BOOST_TEST((asio::query(high, ab::with_priority()) == ab::priority::high));
    auto bounded = asio::prefer(ex, ab::with_queue_timeout(5ms));
    BOOST_TEST((asio::query(bounded, ab::with_queue_timeout()) == std::chrono::steady_clock::duration(5ms)));
    BOOST_TEST((ex == pool.get_executor()));
    BOOST_TEST((ex != never));
    BOOST_TEST((ex != high));
    ab::blocking_pool other;
    BOOST_TEST((ex != other.get_executor()));
}

BOOST_AUTO_TEST_CASE(tracked_executors_count_outstanding_work)
{
    ab::blocking_pool pool;
    {
        auto tracked = asio::require(pool.get_executor(), execution::outstanding_work.tracked);
        auto copy = tracked;
        BOOST_TEST(pool.metrics().outstanding_work == 2u);
        auto moved = std::move(copy);
        BOOST_TEST(pool.metrics().outstanding_work == 2u);
        // join waits for tracked work: a short timed drain gives up while it is held.
        BOOST_TEST(!pool.join_for(20ms));
    }
    BOOST_TEST(pool.metrics().outstanding_work == 0u);
}

BOOST_AUTO_TEST_CASE(join_waits_until_tracked_work_is_released)
{
    ab::blocking_pool pool;
    std::atomic<bool> joined{false};
    auto tracked = std::make_unique<decltype(asio::require(pool.get_executor(), execution::outstanding_work.tracked))>(
        asio::require(pool.get_executor(), execution::outstanding_work.tracked));
    std::thread joiner([&] {
        pool.join();
        joined = true;
    });
    tracked.reset(); // join returns once the last tracked executor is gone

    joiner.join();
    BOOST_TEST(joined.load());
}

BOOST_AUTO_TEST_CASE(post_dispatch_and_defer_run_on_pool_threads)
{
    ab::blocking_pool pool;
    std::promise<bool> posted, nested_inline;
    asio::post(pool, [&] {
        posted.set_value(pool.get_executor().running_in_this_thread());
        bool ran = false;
        asio::dispatch(pool, [&] { ran = true; }); // on a pool thread: inline
        nested_inline.set_value(ran);
    });
    BOOST_TEST(posted.get_future().get());
    BOOST_TEST(nested_inline.get_future().get());
    std::promise<bool> deferred;
    asio::defer(pool.get_executor(), [&] { deferred.set_value(pool.get_executor().running_in_this_thread()); });
    BOOST_TEST(deferred.get_future().get());
    BOOST_TEST(!pool.get_executor().running_in_this_thread());
}

BOOST_AUTO_TEST_CASE(blocking_always_returns_after_the_function_ran)
{
    ab::blocking_pool pool;
    std::thread::id ran_on;
    asio::require(pool.get_executor(), execution::blocking.always).execute([&] {
        ran_on = std::this_thread::get_id();
    });
    BOOST_TEST((ran_on != std::thread::id()));
    BOOST_TEST((ran_on != std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(co_spawn_onto_the_pool_and_any_io_executor_work)
{
    ab::blocking_pool pool;
    auto f = asio::co_spawn(
        pool,
        []() -> asio::awaitable<int> {
            auto ex = co_await asio::this_coro::executor;
            co_await asio::post(ex, asio::use_awaitable);
            co_return 5;
        },
        asio::use_future);
    BOOST_TEST(f.get() == 5);
    asio::any_io_executor any = pool.get_executor();
    std::promise<void> ran;
    asio::post(any, [&] { ran.set_value(); });
    BOOST_TEST((ran.get_future().wait_for(test::patience) == std::future_status::ready));
}

BOOST_AUTO_TEST_CASE(post_after_stop_destroys_the_function_without_running_it)
{
    ab::blocking_pool pool;
    pool.stop();
    auto token = std::make_shared<int>(0);
    bool ran = false;
    asio::post(pool, [&ran, token] { ran = true; });
    BOOST_TEST(!ran);
    BOOST_TEST(token.use_count() == 1);
    BOOST_TEST(pool.metrics().rejected == 1u);
}

BOOST_AUTO_TEST_CASE(join_runs_everything_already_accepted_including_continuations)
{
    ab::blocking_pool pool({.max_threads = 1});
    std::atomic<int> ran{0};
    for (int i = 0; i < 50; ++i)
        asio::post(pool, [&] {
            ++ran;
            asio::post(pool, [&] { ++ran; }); // a continuation, from a pool thread
        });
    pool.join();
    BOOST_TEST(ran.load() == 100);
    BOOST_TEST(pool.metrics().threads == 0u);
    std::atomic<bool> late{false};
    asio::post(pool, [&] { late = true; }); // refused after join
    BOOST_TEST(!late.load());
}

BOOST_AUTO_TEST_SUITE_END()
