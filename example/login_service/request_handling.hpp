// request_handling: the login service's HTTP layer without sockets (request limits, one
// connection's request/response loop, routing), shared by the service and its fuzz target.
#ifndef LOGIN_SERVICE_REQUEST_HANDLING_HPP
#define LOGIN_SERVICE_REQUEST_HANDLING_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace login {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;
using request_parser = http::request_parser<http::string_body>;

/// What one request may use.
/**
 * Beast 1.81 applies `header_limit` to the header only: a chunk header (with its extensions)
 * and the trailer section are kept whole in the read buffer, however large, and a trailer field
 * over 64 KiB throws from inside `async_read`. So the read buffer itself is bounded by
 * `header_bytes`: a header, a chunk header or a trailer section that does not fit ends the
 * request with 413, and nothing a client sends can grow the buffer beyond it.
 *
 * Within the header, Beast consumes each complete field from the buffer as it parses, and
 * compares `header_limit` with what is left only: a header of many short fields would pass any
 * limit while every field costs memory in the parsed message. So the header's bytes and lines
 * are counted as they are consumed (see header_budget).
 */
struct request_limits {
    std::size_t header_bytes = 8 * 1024;
    /// Header fields at most (Apache's LimitRequestFields): each is a node in the message.
    std::size_t header_fields = 100;
    std::uint64_t body_bytes = 4 * 1024;
    /// Time for reading one request (including waiting for it on a kept-alive connection) and
    /// for writing its response: a silent or trickling client cannot hold a connection longer.
    std::chrono::steady_clock::duration io_timeout = std::chrono::seconds(30);
};

/// The work the routes delegate: the service runs it on its blocking pool, the fuzzer stubs it.
class login_backend {
public:
    virtual ~login_backend() = default;
    /// Whether `password` is `user`'s (false for unknown users).
    virtual asio::awaitable<bool> check_password(std::string user, std::string password) = 0;
    /// The body of `GET /metrics`.
    virtual std::string metrics_json() const = 0;
};

/// A read buffer bounded by `limits.header_bytes` (see request_limits).
beast::flat_buffer make_read_buffer(const request_limits& limits);

/// A parser for one request, with `limits` applied.
void apply_limits(request_parser& parser, const request_limits& limits);

/// What a request header has left of its limits, counted over the bytes the parser consumed.
class header_budget {
public:
    explicit header_budget(const request_limits& limits);

    /// Counts header bytes the parser consumed; false once the header is over a limit.
    bool spend(std::string_view consumed);

private:
    std::size_t bytes_left_;
    std::size_t lines_left_; // fields, the request line and the empty line that ends the header
};

/// The reply to a request that could not be read: 413 for limits, 400 for malformed input;
/// nullopt when the client has gone or timed out, so there is no one to answer.
std::optional<response> reply_to_read_error(beast::error_code ec);

/// The response to a well-formed request. Never throws: a failure inside becomes 500.
asio::awaitable<response> respond(const request& req, login_backend& backend);

response make_response(http::status status, std::string body, unsigned version = 11, bool keep_alive = false);

/// Decodes application/x-www-form-urlencoded text; nullopt if malformed.
std::optional<std::string> url_decode(std::string_view in);

/// user and password from a login form; nullopt if either is missing or malformed.
std::optional<std::pair<std::string, std::string>> parse_login_form(std::string_view body);

namespace detail {

template <typename Stream>
void arm_timeout(Stream& stream, std::chrono::steady_clock::duration d)
{
    if constexpr (requires { stream.expires_after(d); })
        stream.expires_after(d);
}

/// Reads the header of one request into `parser`, holding it to `limits` (see request_limits):
/// the parser is fed here, not by http::async_read, so that what it consumes can be counted.
template <typename Stream>
asio::awaitable<beast::error_code> read_header(Stream& stream, beast::flat_buffer& buffer, request_parser& parser,
                                               const request_limits& limits)
{
    header_budget budget(limits);
    for (;;) {
        if (buffer.size() != 0) {
            beast::error_code ec;
            const auto data = buffer.data();
            const std::size_t used = parser.put(data, ec);
            if (!budget.spend({static_cast<const char*>(data.data()), used}))
                co_return http::error::header_limit;
            buffer.consume(used);
            if (ec != http::error::need_more)
                co_return ec; // success means the header is done: put() stops there
        }
        const std::size_t room = beast::read_size(buffer, 64 * 1024);
        if (room == 0)
            co_return http::error::buffer_overflow;
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(room), asio::as_tuple(asio::use_awaitable));
        buffer.commit(n);
        if (ec == asio::error::eof) {
            if (!parser.got_some())
                co_return http::error::end_of_stream;
            parser.put_eof(ec); // the header is not done: partial_message
            co_return ec ? ec : beast::error_code(http::error::partial_message);
        }
        if (ec)
            co_return ec;
    }
}

/// Reads one request: its header (see read_header), then its body.
template <typename Stream>
asio::awaitable<beast::error_code> read_request(Stream& stream, beast::flat_buffer& buffer, request_parser& parser,
                                                const request_limits& limits)
{
    const beast::error_code header_ec = co_await read_header(stream, buffer, parser, limits);
    if (header_ec || parser.is_done())
        co_return header_ec;
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    co_return ec;
}

} // namespace detail

/// Serves requests on `stream` one after another (pipelined ones too) until the client leaves,
/// times out, fails, asks to close, or sends something malformed or too large (answered, then
/// closed). Timeouts apply where `Stream` has `expires_after` (beast::tcp_stream).
template <typename Stream>
asio::awaitable<void> serve_connection(Stream& stream, login_backend& backend, request_limits limits)
{
    beast::flat_buffer buffer = make_read_buffer(limits);
    for (;;) {
        request_parser parser;
        apply_limits(parser, limits);
        detail::arm_timeout(stream, limits.io_timeout);
        const beast::error_code ec = co_await detail::read_request(stream, buffer, parser, limits);
        response res;
        if (ec) {
            std::optional<response> reply = reply_to_read_error(ec);
            if (!reply)
                co_return;
            res = std::move(*reply);
        } else {
            res = co_await respond(parser.get(), backend);
        }
        const bool close = !res.keep_alive();
        detail::arm_timeout(stream, limits.io_timeout);
        auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        if (wec || close)
            co_return;
    }
}

} // namespace login

#endif
