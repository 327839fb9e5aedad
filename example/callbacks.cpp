// Callbacks: read a file and hash its contents off the event loop, with plain completion handlers.
#include <asio_blocking.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace asio = boost::asio;

// Blocking work: read a whole file (here, this process's status from /proc).
std::string read_file(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("cannot open " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Blocking work: a deliberately slow hash (FNV-1a, a million rounds), standing in for bcrypt.
std::uint64_t slow_hash(const std::string& data)
{
    std::uint64_t h = 1469598103934665603ull;
    for (int round = 0; round < 1000; ++round)
        for (unsigned char c : data)
            h = (h ^ c) * 1099511628211ull;
    return h;
}

int main()
{
    asio::io_context io;

    // 1. The event loop stays free: a timer ticks on it while the blocking work runs elsewhere.
    int ticks = 0;
    bool done = false; // cancel() alone misses a tick whose handler is already queued
    asio::steady_timer ticker(io, std::chrono::milliseconds(1));
    std::function<void(boost::system::error_code)> tick = [&](boost::system::error_code ec) {
        if (ec || done)
            return;
        ++ticks;
        ticker.expires_after(std::chrono::milliseconds(1));
        ticker.async_wait(tick);
    };
    ticker.async_wait(tick);

    // 2. Read the file on the io_context's default pool; the handler runs back on the loop.
    asio_blocking::async_blocking(
        io.get_executor(), [] { return read_file("/proc/self/status"); },
        [&](std::exception_ptr error, std::string text) {
            if (error) {
                std::cerr << "read failed\n";
                return;
            }
            std::cout << "read " << text.size() << " bytes of /proc/self/status\n";

            // 3. Chain: hash what was read, again off the loop.
            asio_blocking::async_blocking(
                io.get_executor(), [text] { return slow_hash(text); },
                [&](std::exception_ptr error, std::uint64_t digest) {
                    if (!error)
                        std::printf("hash %016llx\n", static_cast<unsigned long long>(digest));
                    done = true; // let the loop run out of work
                    ticker.cancel();
                });
        });

    // 4. Errors arrive as exceptions in the exception_ptr: nothing is lost, the worker survives.
    asio_blocking::async_blocking(
        io.get_executor(), [] { return read_file("/no/such/file"); },
        [](std::exception_ptr error, std::string) {
            try {
                if (error)
                    std::rethrow_exception(error);
            } catch (const std::exception& e) {
                std::cout << "expected failure: " << e.what() << '\n';
            }
        });

    io.run();
    std::cout << "the loop ticked " << ticks << " times meanwhile\n";
    std::cout << "pool: " << asio_blocking::default_pool(io).metrics() << '\n';
}
