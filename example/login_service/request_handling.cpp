// The login service's limits, error replies and routes (see request_handling.hpp).
#include "request_handling.hpp"

#include <algorithm>
#include <exception>

namespace login {

beast::flat_buffer make_read_buffer(const request_limits& limits)
{
    return beast::flat_buffer(limits.header_bytes);
}

void apply_limits(request_parser& parser, const request_limits& limits)
{
    parser.header_limit(static_cast<std::uint32_t>(limits.header_bytes));
    parser.body_limit(limits.body_bytes);
}

header_budget::header_budget(const request_limits& limits)
    : bytes_left_(limits.header_bytes)
    , lines_left_(limits.header_fields + 2)
{
}

bool header_budget::spend(std::string_view consumed)
{
    // The parser consumes whole lines only, so counting line ends counts lines.
    const auto lines = static_cast<std::size_t>(std::count(consumed.begin(), consumed.end(), '\n'));
    if (consumed.size() > bytes_left_ || lines > lines_left_)
        return false;
    bytes_left_ -= consumed.size();
    lines_left_ -= lines;
    return true;
}

bool expects_continue(const request& req)
{
    return req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue");
}

std::optional<response> reply_to_read_error(beast::error_code ec)
{
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe || ec == asio::error::operation_aborted || ec == beast::error::timeout)
        return std::nullopt;
    // buffer_overflow: a chunk header or trailer section larger than the read buffer.
    if (ec == http::error::body_limit || ec == http::error::header_limit || ec == http::error::buffer_overflow)
        return make_response(http::status::payload_too_large, R"({"error":"request too large"})");
    return make_response(http::status::bad_request, R"({"error":"malformed request"})");
}

void omit_body_for_head(response& res, http::verb request_method)
{
    if (request_method == http::verb::head)
        res.body().clear(); // Content-Length stays: it says what GET would have sent
}

response make_response(http::status status, std::string body, unsigned version, bool keep_alive)
{
    response res{status, version};
    res.set(http::field::server, "asio_blocking login_service");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

std::optional<std::string> url_decode(std::string_view in)
{
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%') {
            if (i + 2 >= in.size())
                return std::nullopt; // a '%' needs two hex digits after it
            auto hex = [](char h) -> int {
                if (h >= '0' && h <= '9')
                    return h - '0';
                if (h >= 'a' && h <= 'f')
                    return h - 'a' + 10;
                if (h >= 'A' && h <= 'F')
                    return h - 'A' + 10;
                return -1;
            };
            const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::pair<std::string, std::string>> parse_login_form(std::string_view body)
{
    std::optional<std::string> user, password;
    while (!body.empty()) {
        const auto amp = body.find('&');
        const std::string_view pair = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos)
            return std::nullopt;
        auto key = url_decode(pair.substr(0, eq));
        auto value = url_decode(pair.substr(eq + 1));
        if (!key || !value)
            return std::nullopt;
        if (*key == "user")
            user = std::move(value);
        else if (*key == "password")
            password = std::move(value);
    }
    if (!user || !password || user->empty() || user->size() > 256 || password->size() > 1024)
        return std::nullopt;
    return std::pair{std::move(*user), std::move(*password)};
}

namespace {

/// 405, with the methods the target allows (RFC 9110 requires Allow in a 405).
response method_not_allowed(std::string_view allow, unsigned version, bool keep_alive)
{
    auto res = make_response(http::status::method_not_allowed,
                             std::string(R"({"error":"use )") + std::string(allow) + "\"}", version, keep_alive);
    res.set(http::field::allow, allow);
    return res;
}

asio::awaitable<response> route(const request& req, login_backend& backend)
{
    const bool keep = req.keep_alive();
    const unsigned v = req.version();
    const std::string_view target = req.target();
    // HEAD is GET without the body (RFC 9110 9.3.2); serve_connection drops the body.
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    if (target == "/health") {
        if (!get)
            co_return method_not_allowed("GET, HEAD", v, keep);
        co_return make_response(http::status::ok, R"({"status":"ok"})", v, keep); // no blocking call
    }
    if (target == "/metrics" || target == "/metrics.json") {
        if (!get)
            co_return method_not_allowed("GET, HEAD", v, keep);
        if (target == "/metrics.json")
            co_return make_response(http::status::ok, backend.metrics_json(), v, keep);
        response res = make_response(http::status::ok, backend.metrics_text(), v, keep);
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        co_return res;
    }
    if (target == "/login") {
        if (req.method() != http::verb::post)
            co_return method_not_allowed("POST", v, keep);
        auto form = parse_login_form(req.body());
        if (!form)
            co_return make_response(http::status::bad_request,
                                    R"({"error":"expected a form body user=...&password=..."})", v, keep);
        const bool ok = co_await backend.check_password(form->first, form->second);
        if (ok)
            co_return make_response(http::status::ok, R"({"ok":true,"user":")" + form->first + "\"}", v, keep);
        co_return make_response(http::status::unauthorized, R"({"ok":false,"error":"invalid credentials"})", v, keep);
    }
    co_return make_response(http::status::not_found, R"({"error":"not found"})", v, keep);
}

} // namespace

asio::awaitable<response> respond(const request& req, login_backend& backend)
{
    try {
        co_return co_await route(req, backend);
    } catch (...) {
        // e.g. a failed database lookup or std::bad_alloc: this request fails, the connection is closed.
    }
    co_return make_response(http::status::internal_server_error, R"({"error":"internal error"})");
}

} // namespace login
