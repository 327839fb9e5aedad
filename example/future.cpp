// Futures: use a blocking_pool from plain synchronous code, with no io_context at all.
#include <asio_blocking.hpp>

#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

namespace asio = boost::asio;

int main()
{
    // A pool sized for CPU-bound work: about one thread per core.
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    asio_blocking::blocking_pool pool({.max_threads = cores, .thread_name = "cpu"});

    // Write a scratch file, then count its lines on the pool while this thread waits.
    const std::string path = "asio_blocking_future_example.txt";
    {
        std::ofstream out(path);
        for (int i = 0; i < 1000; ++i)
            out << "line " << i << '\n';
    }
    std::future<int> lines = asio_blocking::async_blocking(
        pool.get_executor(),
        [path] {
            std::ifstream in(path);
            int n = 0;
            for (std::string line; std::getline(in, line);)
                ++n;
            return n;
        },
        asio::use_future);

    // Fan out CPU-bound work and gather the results.
    std::vector<std::future<std::uint64_t>> sums;
    for (std::uint64_t part = 0; part < 8; ++part)
        sums.push_back(asio_blocking::async_blocking(
            pool.get_executor(),
            [part] {
                std::uint64_t s = 0;
                for (std::uint64_t i = part * 1'000'000; i < (part + 1) * 1'000'000; ++i)
                    s += i % 7;
                return s;
            },
            asio::use_future));

    std::cout << "counted " << lines.get() << " lines\n";
    std::uint64_t total = 0;
    for (auto& s : sums)
        total += s.get();
    std::cout << "sum of i % 7 below 8e6: " << total << '\n';

    // Exceptions thrown on the pool come out of future::get().
    auto failing = asio_blocking::async_blocking(
        pool.get_executor(), []() -> int { throw std::runtime_error("the blocking call failed"); }, asio::use_future);
    try {
        failing.get();
    } catch (const std::exception& e) {
        std::cout << "caught: " << e.what() << '\n';
    }
    std::remove(path.c_str());
    pool.join(); // graceful: everything accepted has run; then the threads are joined
    std::cout << "pool: " << pool.metrics() << '\n';
}
