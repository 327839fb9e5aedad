// Options validation, the error category, the latency histogram and the metrics formats.
#include <asio_blocking/error.hpp>
#include <asio_blocking/lane_metrics.hpp>
#include <asio_blocking/metrics.hpp>
#include <asio_blocking/pool_options.hpp>

#include <asio_blocking/async_blocking.hpp>
#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/detail/latency_histogram.hpp>
#include <asio_blocking/lane.hpp>

#include <boost/asio/use_future.hpp>

#include <boost/system/system_error.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <future>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

// Edge values (0, 1, max()) of every count and duration option: each is either refused with
// std::invalid_argument naming the field, or gives a pool that serves a call and shuts down.
namespace {

constexpr std::size_t count_max = std::numeric_limits<std::size_t>::max();
constexpr auto duration_max = std::chrono::steady_clock::duration::max();

/// A call through `ex` completes (with its value, or an error) within a generous deadline.
template <typename Executor>
bool serves_a_call(const Executor& ex)
{
    auto f = asio_blocking::async_blocking(
        ex, [] { return 1; }, boost::asio::use_future);
    if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
        return false;
    try {
        return f.get() == 1;
    } catch (const std::system_error&) {
        return true; // e.g. a stack the platform cannot provide: the call fails, it does not hang
    } catch (const boost::system::system_error&) {
        return true; // e.g. a 1 ns queue deadline that passed: the call fails, it does not hang
    }
}

bool serves_a_call(ab::pool_options o)
{
    ab::blocking_pool pool(std::move(o));
    return serves_a_call(pool.get_executor());
}

} // namespace

BOOST_AUTO_TEST_CASE(min_threads_edge_values)
{
    {
        ab::blocking_pool pool({.min_threads = 0});
        BOOST_TEST(pool.metrics().threads == 0u); // none until needed
        BOOST_TEST(serves_a_call(pool.get_executor()));
    }
    {
        ab::blocking_pool pool({.min_threads = 1});
        BOOST_TEST(pool.metrics().threads_started + pool.metrics().thread_start_failures <= 1u);
        BOOST_TEST(serves_a_call(pool.get_executor()));
    }
    // More than the process may ever run: refused, not attempted.
    BOOST_CHECK_THROW(ab::blocking_pool({.min_threads = count_max, .max_threads = count_max}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(max_threads_edge_values)
{
    BOOST_CHECK_THROW(ab::blocking_pool({.max_threads = 0}), std::invalid_argument);
    BOOST_TEST(serves_a_call({.max_threads = 1}));
    ab::blocking_pool pool({.max_threads = count_max});
    BOOST_TEST(serves_a_call(pool.get_executor()));
    BOOST_TEST(pool.metrics().threads <= 1u); // a ceiling, not a target
}

BOOST_AUTO_TEST_CASE(idle_timeout_edge_values)
{
    BOOST_TEST(serves_a_call({.idle_timeout = std::chrono::steady_clock::duration::zero()}));
    BOOST_TEST(serves_a_call({.idle_timeout = std::chrono::nanoseconds(1)}));
    BOOST_TEST(serves_a_call({.min_threads = 1, .idle_timeout = std::chrono::nanoseconds(1)}));
    BOOST_TEST(serves_a_call({.idle_timeout = duration_max}));
    BOOST_TEST(serves_a_call({.min_threads = 1, .idle_timeout = duration_max}));
    BOOST_CHECK_THROW(ab::blocking_pool({.idle_timeout = std::chrono::nanoseconds(-1)}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(enum_options_outside_their_enums_are_refused)
{
    BOOST_CHECK_THROW(ab::blocking_pool({.on_overflow = static_cast<ab::overflow_policy>(77)}), std::invalid_argument);
    BOOST_CHECK_THROW(ab::blocking_pool({.worker_scheduling = static_cast<ab::os_scheduling>(77)}),
                      std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(queue_capacity_and_stack_size_edge_values)
{
    for (std::size_t capacity : {std::size_t{0}, std::size_t{1}, count_max})
        BOOST_TEST(serves_a_call({.queue_capacity = capacity}), "queue_capacity " << capacity);
    // 0: the platform's default; 1: raised to the platform's minimum; max(): the thread cannot
    // start, and the call fails instead of hanging.
    for (std::size_t stack : {std::size_t{0}, std::size_t{1}, count_max})
        BOOST_TEST(serves_a_call({.stack_size = stack}), "stack_size " << stack);
}

BOOST_AUTO_TEST_CASE(queue_timeout_edge_values)
{
    ab::blocking_pool pool({.max_threads = 1});
    const auto with = [&](std::chrono::steady_clock::duration d) {
        return boost::asio::require(pool.get_executor(), ab::with_queue_timeout(d));
    };
    // 0 (the default) and max() mean no deadline; 1 ns expires unless started at once.
    BOOST_TEST((boost::asio::query(pool.get_executor(), ab::with_queue_timeout()) ==
                std::chrono::steady_clock::duration::zero()));
    BOOST_TEST(serves_a_call(with(std::chrono::steady_clock::duration::zero())));
    BOOST_TEST(serves_a_call(with(duration_max)));
    BOOST_TEST(serves_a_call(with(std::chrono::nanoseconds(1))));
    BOOST_TEST(pool.metrics().expired + pool.metrics().completed == 3u);
}

BOOST_AUTO_TEST_CASE(join_for_edge_values)
{
    for (auto d : {std::chrono::steady_clock::duration::zero(), std::chrono::steady_clock::duration(1), duration_max}) {
        ab::blocking_pool pool;
        BOOST_TEST(serves_a_call(pool.get_executor()));
        BOOST_TEST(pool.join_for(d), "an idle pool joins at once, d = " << d.count());
    }
}

BOOST_AUTO_TEST_CASE(set_limits_and_lane_limit_edge_values)
{
    ab::blocking_pool pool;
    BOOST_CHECK_THROW(pool.set_limits(0, 0), std::invalid_argument);
    BOOST_CHECK_THROW(pool.set_limits(count_max, count_max), std::invalid_argument);
    BOOST_CHECK_THROW(pool.set_limits(2, 1), std::invalid_argument);
    pool.set_limits(0, 1);
    BOOST_TEST(serves_a_call(pool.get_executor()));
    pool.set_limits(1, 1);
    BOOST_TEST(serves_a_call(pool.get_executor()));
    pool.set_limits(0, count_max);
    BOOST_TEST(serves_a_call(pool.get_executor()));

    BOOST_CHECK_THROW(ab::lane(pool, 0, "zero"), std::invalid_argument);
    ab::lane one(pool, 1, "one");
    BOOST_TEST(serves_a_call(one.get_executor()));
    ab::lane unlimited(pool, count_max, "max");
    BOOST_TEST(serves_a_call(unlimited.get_executor()));
    BOOST_CHECK_THROW(one.set_limit(0), std::invalid_argument);
    one.set_limit(count_max);
    BOOST_TEST(serves_a_call(one.get_executor()));
}

BOOST_AUTO_TEST_CASE(a_pool_has_at_most_65535_lanes_and_its_last_lane_counts_its_own_calls)
{
    // A queued call keeps its lane as a 16-bit index into the pool's lanes.
    ab::blocking_pool pool;
    std::vector<ab::lane> lanes;
    lanes.reserve(65535);
    for (int i = 0; i < 65535; ++i)
        lanes.emplace_back(pool, 1);
    BOOST_CHECK_THROW(ab::lane(pool, 1, "one too many"), std::length_error);
    BOOST_TEST(serves_a_call(lanes.back().get_executor()));
    BOOST_TEST(serves_a_call(lanes.back().get_executor()));
    BOOST_TEST(lanes.back().metrics().completed == 2u);
    BOOST_TEST(lanes.front().metrics().completed == 0u);
    BOOST_TEST(lanes[lanes.size() - 2].metrics().completed == 0u);
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
