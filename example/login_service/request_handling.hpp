// request_handling: the login service's HTTP layer without sockets (request limits, one
// connection's request/response loop, routing), shared by the service and its fuzz target.
#ifndef LOGIN_SERVICE_REQUEST_HANDLING_HPP
#define LOGIN_SERVICE_REQUEST_HANDLING_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
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
    /// The body of `GET /metrics`: the Prometheus text exposition format (0.0.4).
    virtual std::string metrics_text() const = 0;
    /// The body of `GET /metrics.json`.
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

/// Whether the client waits for "100 Continue" before it sends the body.
bool expects_continue(const request& req);

/// The reply to a request that could not be read: 413 for limits, 400 for malformed input;
/// nullopt when the client has gone or timed out, so there is no one to answer.
std::optional<response> reply_to_read_error(beast::error_code ec);

/// The response to a well-formed request. Never throws: a failure inside becomes 500.
asio::awaitable<response> respond(const request& req, login_backend& backend);

response make_response(http::status status, std::string body, unsigned version = 11, bool keep_alive = false);

/// The response to HEAD: as prepared for GET (Content-Length included), without the body.
void omit_body_for_head(response& res, http::verb request_method);

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

template <typename Stream>
void disarm_timeout(Stream& stream)
{
    if constexpr (requires { stream.expires_never(); })
        stream.expires_never();
}

/// Whether the client may still send: once a read has seen end of stream, another read of the
/// socket would wait for an event that never comes (Asio's epoll reactor is edge-triggered and
/// stops reading speculatively after a short read), so what is left is in the buffer.
enum class client_input { open, ended };

/// Completes when the client leaves: a read fails (reset). Bytes that arrive meanwhile are the
/// client's next (pipelined) requests and go to `buffer` for the next read.
/**
 * End of stream is not leaving: a client may half-close after its request and still read the
 * response (and one that closed normally cannot be told from it). After end of stream, or once
 * `buffer` is full, this only waits to be cancelled.
 */
template <typename Stream>
asio::awaitable<void> wait_for_departure(Stream& stream, beast::flat_buffer& buffer, client_input& input)
{
    for (;;) {
        const std::size_t room = std::min<std::size_t>(buffer.max_size() - buffer.size(), 4096);
        if (room == 0)
            break;
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(room), asio::as_tuple(asio::use_awaitable));
        buffer.commit(n);
        if (ec == asio::error::eof) {
            input = client_input::ended;
            break;
        }
        if (ec) // gone, or cancelled because the call finished first
            co_return;
    }
    asio::steady_timer never(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
    co_await never.async_wait(asio::as_tuple(asio::use_awaitable));
}

/// The backend as one connection sees it: a blocking call is raced against the client leaving
/// (wait_for_departure), and cancelled (terminal) when it does, so that no lookup or Argon2
/// check runs, or holds a connection slot, for a client that is gone.
template <typename Stream>
class departure_aware_backend final : public login_backend {
public:
    departure_aware_backend(login_backend& inner, Stream& stream, beast::flat_buffer& buffer, client_input& input)
        : inner_(inner)
        , stream_(stream)
        , buffer_(buffer)
        , input_(input)
    {
    }

    /// Whether a call was cancelled because the client left: then there is no one to answer.
    bool client_gone() const { return client_gone_; }

    asio::awaitable<bool> check_password(std::string user, std::string password) override
    {
        auto ex = co_await asio::this_coro::executor;
        // Named, not temporaries inside co_await: GCC 12 may destroy such temporaries twice.
        auto call = asio::co_spawn(ex, inner_.check_password(std::move(user), std::move(password)), asio::deferred);
        auto departure = asio::co_spawn(ex, wait_for_departure(stream_, buffer_, input_), asio::deferred);
        auto race = asio::experimental::make_parallel_group(std::move(call), std::move(departure));
        // wait_for_one: the first to finish cancels the other (terminal), and both have finished
        // when this resumes, so the stream has no read pending.
        auto [order, call_error, ok, departure_error] =
            co_await race.async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        if (order[0] == 0) {
            if (call_error)
                std::rethrow_exception(call_error);
            co_return ok;
        }
        if (departure_error)
            std::rethrow_exception(departure_error);
        client_gone_ = true;
        throw boost::system::system_error(asio::error::operation_aborted, "the client has gone");
    }

    std::string metrics_text() const override { return inner_.metrics_text(); }
    std::string metrics_json() const override { return inner_.metrics_json(); }

private:
    login_backend& inner_;
    Stream& stream_;
    beast::flat_buffer& buffer_;
    client_input& input_;
    bool client_gone_ = false;
};

/// Reads one request into `parser`, holding it to `limits` (see request_limits), and answers
/// `Expect: 100-continue` where the body has not arrived yet. The parser is fed here, not by
/// http::async_read, so that the header bytes it consumes can be counted.
template <typename Stream>
asio::awaitable<beast::error_code> read_request(Stream& stream, beast::flat_buffer& buffer, request_parser& parser,
                                                const request_limits& limits, client_input& input)
{
    header_budget budget(limits);
    for (;;) {
        if (buffer.size() != 0) {
            beast::error_code ec;
            const bool in_header = !parser.is_header_done();
            const auto data = buffer.data();
            const std::size_t used = parser.put(data, ec);
            if (in_header && !budget.spend({static_cast<const char*>(data.data()), used}))
                co_return http::error::header_limit;
            buffer.consume(used);
            if (ec != http::error::need_more) {
                if (ec || parser.is_done())
                    co_return ec;
                if (in_header && expects_continue(parser.get()) && buffer.size() == 0 && input == client_input::open) {
                    // The client waits for this before it sends the body (RFC 9110 10.1.1). A
                    // Content-Length over the limit has been refused with the header (413).
                    http::response<http::empty_body> go_on{http::status::continue_, 11};
                    auto [wec, wn] = co_await http::async_write(stream, go_on, asio::as_tuple(asio::use_awaitable));
                    if (wec)
                        co_return wec;
                }
                continue; // put() stops where the header ends, and after each part of a body
            }
        }
        beast::error_code ec = asio::error::eof;
        if (input == client_input::open) {
            const std::size_t room = beast::read_size(buffer, 64 * 1024);
            if (room == 0)
                co_return http::error::buffer_overflow;
            auto [rec, n] = co_await stream.async_read_some(buffer.prepare(room), asio::as_tuple(asio::use_awaitable));
            buffer.commit(n);
            ec = rec;
        }
        if (ec == asio::error::eof) {
            input = client_input::ended;
            if (!parser.got_some())
                co_return http::error::end_of_stream;
            parser.put_eof(ec); // an incomplete request: partial_message
            co_return ec ? ec : beast::error_code(http::error::partial_message);
        }
        if (ec)
            co_return ec;
    }
}

} // namespace detail

/// Serves requests on `stream` one after another (pipelined ones too) until the client leaves,
/// times out, fails, asks to close, or sends something malformed or too large (answered, then
/// closed). Timeouts apply where `Stream` has `expires_after` (beast::tcp_stream). While a
/// request waits for the backend, the stream is read to notice the client leaving, which
/// cancels the backend's call: `Stream`'s reads must honour terminal per-operation cancellation.
template <typename Stream>
asio::awaitable<void> serve_connection(Stream& stream, login_backend& backend, request_limits limits)
{
    beast::flat_buffer buffer = make_read_buffer(limits);
    detail::client_input input = detail::client_input::open;
    detail::departure_aware_backend<Stream> watched(backend, stream, buffer, input);
    for (;;) {
        request_parser parser;
        apply_limits(parser, limits);
        detail::arm_timeout(stream, limits.io_timeout);
        const beast::error_code ec = co_await detail::read_request(stream, buffer, parser, limits, input);
        response res;
        if (ec) {
            std::optional<response> reply = reply_to_read_error(ec);
            if (!reply)
                co_return;
            res = std::move(*reply);
        } else {
            detail::disarm_timeout(stream); // a call takes what it takes; the watching read must not time out
            res = co_await respond(parser.get(), watched);
            if (watched.client_gone())
                co_return;
        }
        omit_body_for_head(res, parser.get().method());
        const bool close = !res.keep_alive();
        detail::arm_timeout(stream, limits.io_timeout);
        auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        if (wec || close)
            co_return;
    }
}

} // namespace login

#endif
