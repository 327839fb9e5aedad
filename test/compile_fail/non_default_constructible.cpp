// Must not compile: fn's result has no default constructor (see the static_assert's advice).
#include <asio_blocking.hpp>

#include <boost/asio/io_context.hpp>

struct no_default {
    explicit no_default(int) {}
};

int main()
{
    boost::asio::io_context io;
    asio_blocking::async_blocking(
        io.get_executor(), [] { return no_default(1); }, [](std::exception_ptr, no_default) {});
}
