// A program built against the installed package.
#include <asio_blocking.hpp>

#include <boost/asio/use_future.hpp>

#include <iostream>

int main()
{
    asio_blocking::blocking_pool pool({.max_threads = 2});
    auto answer = asio_blocking::async_blocking(
        pool.get_executor(), [] { return 42; }, boost::asio::use_future);
    std::cout << "consumer: " << answer.get() << '\n';
}
