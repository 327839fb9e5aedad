// Options validation, the error category, the latency histogram and the metrics formats.
#include <asio_blocking/error.hpp>
#include <asio_blocking/lane_metrics.hpp>
#include <asio_blocking/metrics.hpp>
#include <asio_blocking/pool_options.hpp>

#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/detail/latency_histogram.hpp>

#include <boost/system/system_error.hpp>
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <stdexcept>
#include <string>

namespace ab = asio_blocking;

BOOST_AUTO_TEST_SUITE(options_test)

BOOST_AUTO_TEST_CASE(pool_options_is_an_aggregate_with_the_documented_defaults)
{
    ab::pool_options o{1, 8, std::chrono::seconds(3), "db"};
    BOOST_TEST(o.min_threads == 1u);
    BOOST_TEST(o.max_threads == 8u);
    BOOST_TEST(o.thread_name == "db");
    ab::pool_options d;
    BOOST_TEST(d.min_threads == 0u);
    BOOST_TEST(d.max_threads == 512u);
    BOOST_TEST((d.idle_timeout == std::chrono::seconds(10)));
    BOOST_TEST(d.thread_name == "blocking");
    BOOST_TEST(d.queue_capacity == 0u);
    BOOST_TEST((d.on_overflow == ab::overflow_policy::wait));
    BOOST_TEST(d.stack_size == 0u);
}

BOOST_AUTO_TEST_CASE(invalid_options_throw_invalid_argument_naming_the_field)
{
    auto message_of = [](ab::pool_options o) -> std::string {
        try {
            ab::blocking_pool pool(std::move(o));
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    BOOST_TEST(message_of({.max_threads = 0}).find("max_threads") != std::string::npos);
    BOOST_TEST(message_of({.min_threads = 5, .max_threads = 4}).find("min_threads") != std::string::npos);
    BOOST_TEST(message_of({.idle_timeout = std::chrono::seconds(-1)}).find("idle_timeout") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(error_codes_live_in_the_asio_blocking_category)
{
    boost::system::error_code ec = ab::error::queue_full;
    BOOST_TEST(ec.category().name() == std::string("asio_blocking"));
    BOOST_TEST(ec == ab::make_error_code(ab::error::queue_full));
    BOOST_TEST(ec != ab::make_error_code(ab::error::deadline_expired));
    BOOST_TEST(!ec.message().empty());
    boost::system::system_error e(ab::error::deadline_expired);
    BOOST_TEST((e.code() == ab::error::deadline_expired));
}

BOOST_AUTO_TEST_CASE(histogram_buckets_round_trip_within_an_eighth)
{
    using h = ab::detail::latency_histogram;
    for (std::uint64_t v : {0ull, 1ull, 7ull, 8ull, 9ull, 15ull, 16ull, 1000ull, 123456789ull, 1ull << 40}) {
        const unsigned b = h::bucket_of(v);
        BOOST_TEST(b < h::bucket_count);
        BOOST_TEST(h::upper_bound_of(b) >= v);
        BOOST_TEST(h::upper_bound_of(b) <= v + v / 8 + 1);
        if (b > 0)
            BOOST_TEST(h::upper_bound_of(b - 1) < v);
    }
}

BOOST_AUTO_TEST_CASE(histogram_percentiles_follow_the_samples)
{
    ab::detail::latency_histogram hist;
    for (int i = 1; i <= 1000; ++i)
        hist.record(static_cast<std::uint64_t>(i) * 1000); // 1 µs .. 1 ms
    const ab::latency_summary s = hist.summary();
    BOOST_TEST(s.count == 1000u);
    BOOST_TEST(s.max.count() == 1'000'000);
    BOOST_TEST(s.p50.count() >= 500'000);
    BOOST_TEST(s.p50.count() <= 500'000 * 9 / 8 + 1);
    BOOST_TEST(s.p99.count() >= 990'000);
    BOOST_TEST(s.p99.count() <= 1'000'000);
    BOOST_TEST(s.p90.count() >= 900'000);
}

BOOST_AUTO_TEST_CASE(metrics_print_and_serialise_with_stable_names)
{
    ab::pool_metrics m;
    m.threads = 3;
    m.submitted = 10;
    m.completed = 9;
    m.failed = 1;
    m.queue_wait.count = 10;
    m.queue_wait.p99 = std::chrono::microseconds(250);
    std::ostringstream text;
    text << m;
    BOOST_TEST(text.str().find("threads=3") != std::string::npos);
    BOOST_TEST(text.str().find("completed=9") != std::string::npos);
    const std::string json = ab::to_json(m);
    BOOST_TEST(json.front() == '{');
    BOOST_TEST(json.back() == '}');
    for (const char* field :
         {"\"threads\":3", "\"submitted\":10", "\"completed\":9", "\"failed\":1", "\"queue_wait\":{\"count\":10",
          "\"p99_ns\":250000", "\"run_time\":", "\"peak_threads\":", "\"cancelled\":", "\"rejected\":", "\"expired\":"})
        BOOST_TEST(json.find(field) != std::string::npos, field);
}

BOOST_AUTO_TEST_CASE(lane_metrics_serialise_to_json_with_an_escaped_name)
{
    ab::lane_metrics m;
    m.name = "db \"main\"\n";
    m.limit = 15;
    m.running = 2;
    m.waiting = 3;
    m.completed = 40;
    BOOST_TEST(ab::to_json(m) == "{\"name\":\"db \\\"main\\\"\\u000a\",\"limit\":15,\"running\":2,\"admitted\":0,"
                                 "\"waiting\":3,\"peak_running\":0,\"completed\":40}");
}

BOOST_AUTO_TEST_SUITE_END()
