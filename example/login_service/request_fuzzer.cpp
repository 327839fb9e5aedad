// login_request_fuzzer: libFuzzer target that feeds raw bytes to the login service's connection
// loop (request_handling.hpp: the same read buffer, parser limits, routes and error replies)
// over an in-memory stream, with the database and password hashing stubbed.
//
//   build/fuzz/example/login_request_fuzzer -max_total_time=60 example/login_service/fuzz_corpus
#include "request_handling.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string_view>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

class stub_backend final : public login::login_backend {
public:
    asio::awaitable<bool> check_password(std::string user, std::string password) override
    {
        // Suspend once, as the real service does while the pool works.
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        co_return user == "alice" && password == "wonderland";
    }
    std::string metrics_text() const override
    {
        return "# TYPE asio_blocking_threads gauge\nasio_blocking_threads 0\n";
    }
    std::string metrics_json() const override { return R"({"pool":{},"lanes":[]})"; }
};

[[noreturn]] void fail(const char* what)
{
    std::fprintf(stderr, "login_request_fuzzer: %s\n", what);
    std::abort();
}

/// Everything the server wrote must be a sequence of complete, well-formed responses: final ones
/// (200-599), any of them after a 100 Continue. A response to HEAD has a Content-Length and no
/// body; the service's bodies are JSON, so a header followed by nothing or by the next response
/// is taken as one.
void check_responses(std::string_view out)
{
    while (!out.empty()) {
        http::response_parser<http::string_body> parser;
        parser.eager(true);
        const auto header_end = out.find("\r\n\r\n");
        if (header_end == std::string_view::npos)
            fail("the server wrote something that is not a complete HTTP response");
        const std::string_view after = out.substr(header_end + 4);
        if (after.empty() || after.starts_with("HTTP/"))
            parser.skip(true);
        beast::error_code ec;
        const std::size_t used = parser.put(asio::buffer(out.data(), out.size()), ec);
        if (ec || !parser.is_done())
            fail("the server wrote something that is not a complete HTTP response");
        const unsigned status = parser.get().result_int();
        if ((status < 200 && status != 100) || status > 599)
            fail("the server answered with a status outside 200-599");
        out.remove_prefix(used);
    }
}

/// Serves `input` as one connection's bytes, `read_size` bytes per read at most.
void serve(std::string_view input, std::size_t read_size)
{
    asio::io_context io;
    beast::test::stream server(io), client(io);
    server.connect(client);
    server.append(input);
    server.close_remote(); // the server reads end-of-stream after the input
    server.read_size(read_size);
    stub_backend backend;
    bool finished = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await login::serve_connection(server, backend, login::request_limits{});
            finished = true;
        },
        [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    io.run(); // an exception escaping here is what took the service down: let libFuzzer report it
    if (!finished)
        fail("the connection loop did not end after its input did");
    check_responses(client.str());
}

} // namespace

// libFuzzer's own mutations rarely grow one field by kilobytes, yet limits are where parsers
// break (issue 11: a trailer field over 64 KiB). So one mutation in eight repeats a byte of the
// input instead, most often up to -max_len; the rest are libFuzzer's.
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed)
{
    std::minstd_rand rng(seed);
    if (size == 0 || size >= max_size || rng() % 8 != 0)
        return LLVMFuzzerMutate(data, size, max_size);
    const std::size_t at = rng() % size;
    const std::size_t room = max_size - size;
    const auto kind = rng() % 4; // a few bytes, any number, or all the room there is
    const std::size_t run = kind == 0   ? 1 + rng() % std::min<std::size_t>(room, 64)
                            : kind == 1 ? 1 + rng() % room
                                        : room;
    std::memmove(data + at + run, data + at, size - at); // the byte at `at` moves to `at + run`
    std::memset(data + at, data[at + run], run);
    return size + run;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    serve(input, input.size() + 1); // all at once
    // In small pieces, as a slow network delivers them (larger ones for large inputs, to keep the
    // executions per second up).
    serve(input, (1 + (size ? data[0] % 16 : 0)) * (1 + size / 4096));
    return 0;
}
