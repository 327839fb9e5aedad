// Coroutines: blocking calls awaited with use_awaitable, many in parallel, with a timeout.
#include <asio_blocking.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

// Blocking work standing in for a database query: it sleeps, as a network round trip would.
int query_database(int id)
{
    std::this_thread::sleep_for(50ms);
    return id * 10;
}

asio::awaitable<void> handle_request(int id)
{
    auto ex = co_await asio::this_coro::executor;
    // The coroutine suspends; the loop serves others; the result arrives on this executor.
    int row = co_await asio_blocking::async_blocking(
        ex, [id] { return query_database(id); }, asio::use_awaitable);
    std::cout << "request " << id << " -> row " << row << '\n';
}

asio::awaitable<void> with_timeout()
{
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, 20ms);
    // A call that takes too long: the timer wins, the call is cancelled (if still queued) or
    // abandoned (if running; it finishes on its worker and its result is dropped).
    auto result = co_await (asio_blocking::async_blocking(
                                ex, [] { return query_database(99); }, asio::use_awaitable) ||
                            timer.async_wait(asio::use_awaitable));
    std::cout << (result.index() == 1 ? "slow query timed out after 20ms\n" : "slow query finished\n");
}

int main()
{
    asio::io_context io;
    const auto start = std::chrono::steady_clock::now();
    // 100 requests, each blocking for 50 ms: the pool grows to meet them (instead of running
    // them one after another for 5 s), then shrinks back once idle.
    for (int id = 0; id < 100; ++id)
        asio::co_spawn(io, handle_request(id), asio::detached);
    asio::co_spawn(io, with_timeout(), asio::detached);
    io.run();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    const auto m = asio_blocking::default_pool(io).metrics();
    std::cout << "100 x 50 ms of blocking calls took " << ms.count() << " ms on " << m.peak_threads
              << " threads at peak\n";
}
