// Stress and fault-injection: the ways thread pools are known to fail, each run many times.
// Seeds are printed on failure; ASIO_BLOCKING_STRESS_SCALE scales the round counts.
#include <asio_blocking.hpp>

#include "test_support.hpp"

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

namespace asio = boost::asio;
namespace ab = asio_blocking;
using namespace std::chrono_literals;

namespace {

/// Counts, per call, how often fn ran and how often the handler ran.
struct ledger {
    std::vector<std::atomic<int>> ran, completed;
    explicit ledger(std::size_t n)
        : ran(n)
        , completed(n)
    {
    }
};

template <typename T>
struct throwing_allocator {
    using value_type = T;
    std::shared_ptr<std::atomic<int>> budget; // allocations left before one throws
    explicit throwing_allocator(std::shared_ptr<std::atomic<int>> b)
        : budget(std::move(b))
    {
    }
    template <typename U>
    throwing_allocator(const throwing_allocator<U>& o) noexcept
        : budget(o.budget)
    {
    }
    T* allocate(std::size_t n)
    {
        if (budget->fetch_sub(1) <= 0)
            throw std::bad_alloc();
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
    template <typename U>
    bool operator==(const throwing_allocator<U>& o) const noexcept
    {
        return budget == o.budget;
    }
};

struct throwing_move {
    int value = 0;
    throwing_move() = default;
    explicit throwing_move(int v)
        : value(v)
    {
    }
    throwing_move(throwing_move&& o)
        : value(o.value)
    {
        if (o.value == 13)
            throw std::runtime_error("move");
    }
    throwing_move& operator=(throwing_move&&) = default;
};

} // namespace

BOOST_AUTO_TEST_SUITE(stress_test)

BOOST_AUTO_TEST_CASE(stranding_submit_one_and_await_with_one_retiring_thread)
{
    ab::blocking_pool pool({.min_threads = 0, .max_threads = 1, .idle_timeout = 1ms});
    const int rounds = test::rounds(10000);
    for (int i = 0; i < rounds; ++i) {
        auto f = ab::async_blocking(
            pool.get_executor(), [i] { return i; }, asio::use_future);
        BOOST_REQUIRE_MESSAGE(f.wait_for(30s) == std::future_status::ready, "round " << i << " stranded");
        BOOST_REQUIRE_EQUAL(f.get(), i);
        if (i % 97 == 0)
            std::this_thread::sleep_for(1ms); // let the worker time out now and then
    }
    std::mt19937 rng(2024);
    for (int i = 0; i < test::rounds(500); ++i) {
        auto f = ab::async_blocking(
            pool.get_executor(), [] {}, asio::use_future);
        BOOST_REQUIRE_MESSAGE(f.wait_for(30s) == std::future_status::ready, "arrival " << i << " stranded (seed 2024)");
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    }
}

BOOST_AUTO_TEST_CASE(churn_construct_submit_destroy)
{
    asio::io_context io;
    int completions = 0;
    const int rounds = test::rounds(10000);
    for (int i = 0; i < rounds; ++i) {
        ab::blocking_pool pool({.max_threads = 2, .idle_timeout = 1ms});
        ab::async_blocking(
            pool, io.get_executor(), [] { return 1; }, [&](std::exception_ptr, int) { ++completions; });
        if (i % 2)
            asio::post(pool, [] {});
    } // destroyed at once: the call either ran or was aborted, and is delivered either way
    io.run();
    BOOST_TEST(completions == rounds);
}

BOOST_AUTO_TEST_CASE(submit_shutdown_race_ends_every_call_in_exactly_one_state)
{
    const int rounds = test::rounds(200);
    const unsigned seed = 99;
    std::mt19937 rng(seed);
    for (int round = 0; round < rounds; ++round) {
        asio::io_context io;
        auto work = asio::make_work_guard(io);
        std::thread io_thread([&] { io.run(); });
        constexpr int per_thread = 50, submitters = 3;
        ledger book(per_thread * submitters);
        std::atomic<int> aborted{0};
        {
            ab::blocking_pool pool({.max_threads = 3});
            const int stop_after = static_cast<int>(rng() % (per_thread * submitters));
            std::atomic<int> submitted{0};
            std::vector<std::thread> threads;
            for (int t = 0; t < submitters; ++t)
                threads.emplace_back([&, t] {
                    for (int i = 0; i < per_thread; ++i) {
                        const int id = t * per_thread + i;
                        ab::async_blocking(
                            pool, io.get_executor(),
                            [&book, id] {
                                ++book.ran[id];
                                return id;
                            },
                            [&, id](std::exception_ptr e, int) {
                                ++book.completed[id];
                                if (e)
                                    ++aborted;
                            });
                        ++submitted;
                    }
                });
            test::eventually([&] { return submitted.load() >= stop_after; });
            pool.stop();
            for (auto& t : threads)
                t.join();
        }
        work.reset();
        io_thread.join();
        int ran_total = 0;
        for (std::size_t id = 0; id < book.ran.size(); ++id) {
            BOOST_REQUIRE_MESSAGE(book.completed[id] == 1, "call " << id << " completed " << book.completed[id]
                                                                   << " times (seed " << seed << ", round " << round
                                                                   << ")");
            BOOST_REQUIRE_LE(book.ran[id].load(), 1);
            ran_total += book.ran[id];
        }
        // Every call ran once and delivered, or never ran and was aborted.
        BOOST_REQUIRE_EQUAL(ran_total + aborted.load(), static_cast<int>(book.ran.size()));
    }
}

BOOST_AUTO_TEST_CASE(random_operation_mix_keeps_the_invariants)
{
    const unsigned seed = 31337;
    std::mt19937 rng(seed);
    const int rounds = test::rounds(100);
    auto pool = std::make_unique<ab::blocking_pool>(ab::pool_options{.max_threads = 4, .idle_timeout = 2ms});
    std::size_t min_t = 0, max_t = 4;
    std::vector<std::shared_ptr<std::atomic<int>>> handler_runs, fn_runs;
    for (int round = 0; round < rounds; ++round) {
        auto io = std::make_unique<asio::io_context>();
        std::vector<std::unique_ptr<asio::cancellation_signal>> signals;
        bool io_destroyed = false;
        for (int step = 0; step < 40; ++step) {
            switch (rng() % 10) {
            case 0:
            case 1:
            case 2:
            case 3:
            case 4: {
                auto h = std::make_shared<std::atomic<int>>(0);
                auto f = std::make_shared<std::atomic<int>>(0);
                handler_runs.push_back(h);
                fn_runs.push_back(f);
                signals.push_back(std::make_unique<asio::cancellation_signal>());
                const int spin = static_cast<int>(rng() % 3000);
                ab::async_blocking(
                    *pool, io->get_executor(),
                    [f, spin] {
                        ++*f;
                        volatile int x = 0;
                        for (int k = 0; k < spin; ++k)
                            x = x + k;
                        return 1;
                    },
                    asio::bind_cancellation_slot(signals.back()->slot(), [h](std::exception_ptr, int) { ++*h; }));
                break;
            }
            case 5:
                if (!signals.empty())
                    signals[rng() % signals.size()]->emit(rng() % 2 ? asio::cancellation_type::terminal
                                                                    : asio::cancellation_type::total);
                break;
            case 6:
                io->poll();
                break;
            case 7: {
                max_t = 1 + rng() % 4;
                min_t = rng() % (max_t + 1);
                pool->set_limits(min_t, max_t);
                break;
            }
            case 8:
                if (rng() % 8 == 0) { // destroy the caller's context with calls pending
                    signals.clear();
                    io.reset();
                    io_destroyed = true;
                    io = std::make_unique<asio::io_context>();
                }
                break;
            case 9:
                if (rng() % 10 == 0) { // stop or drain, then start over with a new pool
                    if (rng() % 2)
                        pool->stop();
                    else
                        pool->join();
                    io->run();
                    pool = std::make_unique<ab::blocking_pool>(ab::pool_options{.max_threads = 4, .idle_timeout = 2ms});
                    min_t = 0;
                    max_t = 4;
                }
                break;
            }
            const auto m = pool->metrics();
            BOOST_REQUIRE_MESSAGE(m.threads <= std::max<std::size_t>(max_t, 4), "seed " << seed << " round " << round);
        }
        (void)io_destroyed;
        BOOST_REQUIRE_MESSAGE(test::run_until(*io,
                                              [&] {
                                                  const auto m = pool->metrics();
                                                  return m.queued == 0 && m.busy_threads == 0 &&
                                                         m.waiting_admission == 0;
                                              }),
                              "seed " << seed << " round " << round);
        io->restart();
        io->poll();
        const auto m = pool->metrics();
        BOOST_REQUIRE_EQUAL(m.completed + m.failed + m.cancelled + m.rejected + m.expired, m.submitted);
        // Surplus threads leave asynchronously; the count converges to the bounds.
        BOOST_REQUIRE_MESSAGE(test::eventually([&] { return pool->metrics().threads <= max_t; }),
                              "seed " << seed << " round " << round);
    }
    pool.reset();
    for (std::size_t i = 0; i < handler_runs.size(); ++i) {
        BOOST_REQUIRE_LE(handler_runs[i]->load(), 1);
        BOOST_REQUIRE_LE(fn_runs[i]->load(), 1);
    }
}

// Loops awaiting one call at a time make workers poll for their next call (see idle_spin):
// calls handed to a polling worker, cancelled around it, or arriving while the limits shrink
// and grow, all complete exactly once.
BOOST_AUTO_TEST_CASE(loops_awaiting_in_turn_lose_no_call_while_workers_poll_and_limits_change)
{
    ab::blocking_pool pool({.max_threads = 3, .idle_timeout = 1ms, .worker_scheduling = ab::os_scheduling::normal});
    const int n = test::rounds(1'000);
    constexpr int loops = 3;
    std::vector<int> handled(loops, 0);
    std::vector<std::thread> threads;
    for (int l = 0; l < loops; ++l)
        threads.emplace_back([&, l] {
            asio::io_context io;
            asio::cancellation_signal signal;
            int left = n;
            std::function<void()> next = [&] {
                const int i = left--;
                auto handler = [&](std::exception_ptr, int) {
                    ++handled[l];
                    if (left > 0)
                        next();
                };
                if (i % 7 == 0) { // cancelled while queued, handed over or running
                    ab::async_blocking(
                        pool, io.get_executor(), [] { return 1; },
                        asio::bind_cancellation_slot(signal.slot(), handler));
                    signal.emit(i % 2 ? asio::cancellation_type::terminal : asio::cancellation_type::total);
                } else {
                    ab::async_blocking(
                        pool, io.get_executor(), [] { return 1; }, handler);
                }
                if (l == 0 && i % 50 == 0) { // surplus parked workers told to leave, then kept
                    const std::size_t limits[][2] = {{0, 1}, {1, 3}, {0, 2}, {2, 3}};
                    pool.set_limits(limits[i / 50 % 4][0], limits[i / 50 % 4][1]);
                }
            };
            next();
            io.run_for(test::patience);
        });
    for (std::thread& t : threads)
        t.join();
    for (int l = 0; l < loops; ++l)
        BOOST_TEST(handled[l] == n, "loop " << l);
    const ab::pool_metrics m = pool.metrics();
    BOOST_TEST(m.idle_spin_hits <= m.idle_spins);
}

BOOST_AUTO_TEST_CASE(thread_start_failures_never_hang_or_lose_a_call)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 4, .idle_timeout = 1ms});
    int delivered = 0, failed = 0;
    for (int i = 0; i < test::rounds(300); ++i) {
        if (i % 3 == 0)
            ab::detail::inject_thread_start_failures = 1 + i % 4;
        ab::async_blocking(
            pool, io.get_executor(), [] { return 1; },
            [&](std::exception_ptr e, int) {
                ++delivered;
                failed += e != nullptr;
            });
        if (i % 10 == 0) {
            io.poll();
            io.restart();
        }
    }
    io.run();
    ab::detail::inject_thread_start_failures = 0;
    BOOST_TEST(delivered == test::rounds(300));
    BOOST_TEST_MESSAGE(failed << " calls failed to find a thread");
    const auto m = pool.metrics();
    BOOST_TEST(m.thread_start_failures > 0u);
    BOOST_TEST(m.completed + m.failed == m.submitted);
    pool.join(); // shutdown returns
}

BOOST_AUTO_TEST_CASE(exceptions_from_fn_results_and_allocators_lose_nothing)
{
    asio::io_context io;
    ab::blocking_pool pool({.max_threads = 2});
    int delivered = 0, errors = 0;
    auto count = [&](std::exception_ptr e, auto&&...) {
        ++delivered;
        errors += e != nullptr;
    };
    // A throwing fn and a result whose move constructor throws.
    ab::async_blocking(
        pool, io.get_executor(), []() -> int { throw std::logic_error("fn"); }, count);
    ab::async_blocking(
        pool, io.get_executor(), [] { return throwing_move(13); }, count);
    ab::async_blocking(
        pool, io.get_executor(), [] { return throwing_move(1); }, count);
    // A handler allocator exhausted after the operation's own allocation: delivery does not
    // depend on it (Asio's recycling allocator carries the completion).
    auto budget = std::make_shared<std::atomic<int>>(1); // the operation itself, then nothing
    ab::async_blocking(
        pool, io.get_executor(), [] { return 1; }, asio::bind_allocator(throwing_allocator<void>(budget), count));
    // A handler allocator that fails up front: the initiating function throws, nothing leaks.
    auto empty = std::make_shared<std::atomic<int>>(0);
    BOOST_CHECK_THROW(
        ab::async_blocking(
            pool, io.get_executor(), [] { return 1; }, asio::bind_allocator(throwing_allocator<void>(empty), count)),
        std::bad_alloc);
    io.run();
    BOOST_TEST(delivered == 4);
    BOOST_TEST(errors == 2);
    BOOST_TEST(ab::async_blocking(
                   pool.get_executor(), [] { return 2; }, asio::use_future)
                   .get() == 2);
}

BOOST_AUTO_TEST_CASE(self_wait_is_detected_instead_of_deadlocking)
{
    ab::blocking_pool pool({.max_threads = 1});
    // join() from the pool's own thread.
    auto joined = ab::async_blocking(
        pool.get_executor(),
        [&] {
            try {
                pool.join();
                return std::string("joined");
            } catch (const std::logic_error&) {
                return std::string("detected");
            }
        },
        asio::use_future);
    BOOST_TEST(joined.get() == "detected");
    // A future only this thread could fill, waited for on this thread.
    auto nested = ab::async_blocking(
        pool.get_executor(),
        [&] {
            try {
                return ab::async_blocking(
                           pool.get_executor(), [] { return 1; }, asio::use_future)
                    .get();
            } catch (const std::logic_error&) {
                return -1;
            }
        },
        asio::use_future);
    BOOST_REQUIRE((nested.wait_for(test::patience) == std::future_status::ready));
    BOOST_TEST(nested.get() == -1);
}

// Loops streaming tiny calls through two pools, whose workers hold the loops' batches for a few
// deliveries (see held_batches); after the odd call of a millisecond or more a worker is lowered
// and hands them to the courier instead, until calls are tiny again. Mid-stream one pool is joined and destroyed, and
// one loop's io_context is destroyed while results for it are in flight or held. Every call ends exactly once: its
// handler runs, or (only on the destroyed loop) is destroyed unrun; nothing hangs.
BOOST_AUTO_TEST_CASE(held_batches_survive_loops_destroyed_and_pools_joined_mid_stream)
{
    constexpr int loops = 3, chains = 8, per_loop = 1'500;
    /// Counts a handler destroyed without having run (moved-from copies count nothing).
    struct end_tracker {
        std::atomic<int>* destroyed;
        bool armed = true;
        explicit end_tracker(std::atomic<int>* d)
            : destroyed(d)
        {
        }
        end_tracker(end_tracker&& o) noexcept
            : destroyed(o.destroyed)
            , armed(std::exchange(o.armed, false))
        {
        }
        end_tracker& operator=(end_tracker&&) = delete;
        ~end_tracker()
        {
            if (armed)
                ++*destroyed;
        }
    };
    for (int round = 0; round < test::rounds(8); ++round) {
        ledger book(loops * per_loop); // ran: handler ran; completed: handler destroyed unrun
        std::mutex pools_mutex;        // handlers submit only to pools still alive
        std::optional<ab::blocking_pool> pools[2];
        pools[0].emplace(ab::pool_options{.max_threads = 1, .worker_scheduling = ab::os_scheduling::normal});
        pools[1].emplace(ab::pool_options{.max_threads = 2, .idle_timeout = 1ms});
        std::atomic<int> handled{0};
        std::vector<std::unique_ptr<asio::io_context>> ios;
        std::vector<std::thread> threads;
        std::array<int, loops> next_id{};
        std::array<std::function<void()>, loops> submit;
        for (int l = 0; l < loops; ++l) {
            ios.push_back(std::make_unique<asio::io_context>());
            asio::io_context& io = *ios.back();
            // Runs on loop l's thread only (its handlers and its first posts).
            submit[l] = [&, l] {
                if (next_id[l] == per_loop)
                    return;
                const int id = l * per_loop + next_id[l]++;
                std::lock_guard lk(pools_mutex);
                ab::blocking_pool& pool = pools[id % 2] ? *pools[id % 2] : *pools[0];
                ab::async_blocking(
                    pool, io.get_executor(),
                    [id] {
                        if (id % 61 == 1) // a call of a millisecond or more: the worker is lowered
                            std::this_thread::sleep_for(1500us);
                        return id;
                    },
                    [&, l, id, t = end_tracker(&book.completed[id])](std::exception_ptr, int) mutable {
                        t.armed = false;
                        ++book.ran[id];
                        ++handled;
                        submit[l]();
                    });
            };
            for (int c = 0; c < chains; ++c)
                asio::post(io, [&, l] { submit[l](); });
            threads.emplace_back([&io] { io.run_for(test::patience); });
        }
        // Mid-stream: pool 1 joined (calls from the loops meanwhile are refused, and delivered
        // so), then destroyed; then loop 2 destroyed with results for it in flight.
        BOOST_REQUIRE(test::eventually([&] { return handled >= loops * per_loop / 4; }));
        pools[1]->join();
        {
            std::lock_guard lk(pools_mutex);
            pools[1].reset();
        }
        BOOST_REQUIRE(test::eventually([&] { return handled >= loops * per_loop / 2; }));
        ios[2]->stop();
        threads[2].join();
        ios[2].reset();
        for (int l = 0; l < 2; ++l)
            threads[l].join(); // each loop's run() ends once its calls have all been handled
        pools[0]->join();
        for (int id = 0; id < loops * per_loop; ++id) {
            const int l = id / per_loop;
            if (id % per_loop >= next_id[l])
                continue; // never submitted: its loop ended (loop 2) before
            BOOST_REQUIRE_MESSAGE(book.ran[id] + book.completed[id] == 1,
                                  "call " << id << " ran " << book.ran[id] << ", destroyed " << book.completed[id]
                                          << " (round " << round << ")");
            BOOST_REQUIRE_MESSAGE(l == 2 || book.ran[id] == 1, "call " << id << " of a live loop was not handled");
        }
        BOOST_TEST(next_id[0] == per_loop);
        BOOST_TEST(next_id[1] == per_loop);
    }
}

BOOST_AUTO_TEST_CASE(a_pool_thread_may_wait_for_work_another_thread_can_run)
{
    ab::blocking_pool pool({.max_threads = 2});
    auto outer = ab::async_blocking(
        pool.get_executor(),
        [&] {
            return ab::async_blocking(
                       pool.get_executor(), [] { return 7; }, asio::use_future)
                .get();
        },
        asio::use_future);
    BOOST_REQUIRE((outer.wait_for(test::patience) == std::future_status::ready));
    BOOST_TEST(outer.get() == 7);
}

BOOST_AUTO_TEST_SUITE_END()
