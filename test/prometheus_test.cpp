// The Prometheus collector: values, histogram shape, lane labels, validation and pool lifetimes.
#include <asio_blocking/prometheus.hpp> // first: the header is self-contained

#include <asio_blocking.hpp>

#include "test_support.hpp"

#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <prometheus/text_serializer.h>

#include <atomic>
#include <cmath>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ab = asio_blocking;
using namespace std::chrono_literals;
using Families = std::vector<prometheus::MetricFamily>;

namespace {

const prometheus::MetricFamily* family(const Families& families, const std::string& name)
{
    for (const auto& f : families)
        if (f.name == name)
            return &f;
    return nullptr;
}

/// The sample of family `name` whose labels are exactly `labels`.
const prometheus::ClientMetric* sample(const Families& families, const std::string& name,
                                       const prometheus::Labels& labels)
{
    const auto* f = family(families, name);
    if (!f)
        return nullptr;
    for (const auto& m : f->metric) {
        prometheus::Labels have;
        for (const auto& l : m.label)
            have.emplace(l.name, l.value);
        if (have == labels)
            return &m;
    }
    return nullptr;
}

void run_calls(ab::blocking_pool::executor_type ex, int n, std::chrono::milliseconds sleep = 0ms)
{
    std::vector<std::future<void>> calls;
    for (int i = 0; i < n; ++i)
        calls.push_back(ab::async_blocking(
            ex, [sleep] { std::this_thread::sleep_for(sleep); }, boost::asio::use_future));
    for (auto& c : calls)
        c.get();
}

} // namespace

BOOST_AUTO_TEST_SUITE(prometheus_test)

BOOST_AUTO_TEST_CASE(collected_values_match_metrics_after_known_work)
{
    ab::blocking_pool pool({.min_threads = 2, .max_threads = 2, .idle_timeout = 1h});
    ab::prometheus_collector collector(pool, {{"pool", "db"}});
    run_calls(pool.get_executor(), 20);
    auto failing = ab::async_blocking(
        pool.get_executor(), []() -> int { throw std::runtime_error("no"); }, boost::asio::use_future);
    BOOST_CHECK_THROW(failing.get(), std::runtime_error);
    BOOST_TEST(test::eventually([&] {
        const auto m = pool.metrics();
        return m.completed == 20 && m.failed == 1 && m.threads == 2 && m.idle_threads == 2;
    }));

    // A parked worker may still be polling for a next call (see idle_spin) and count that poll
    // a moment later: compare a collection with a snapshot only if none changed meanwhile.
    Families families;
    ab::pool_metrics m;
    const auto text = [](const ab::pool_metrics& metrics) {
        std::ostringstream os;
        os << metrics;
        return os.str();
    };
    BOOST_TEST_REQUIRE(test::eventually([&] {
        const ab::pool_metrics before = pool.metrics();
        families = collector.Collect();
        m = pool.metrics();
        return text(before) == text(m);
    }));
    const prometheus::Labels labels{{"pool", "db"}};
    BOOST_TEST(sample(families, "asio_blocking_completed_total", labels)->counter.value == 20.0);
    BOOST_TEST(sample(families, "asio_blocking_failed_total", labels)->counter.value == 1.0);
    BOOST_TEST(sample(families, "asio_blocking_threads", labels)->gauge.value == 2.0);
    // Every field of pool_metrics is there, under its name, with the snapshot's value.
    ab::for_each_field(m, [&](const ab::metric_field& field, const auto& value) {
        const std::string name = std::string("asio_blocking_") + field.name;
        using value_type = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<value_type, ab::latency_summary>) {
            const auto* h = sample(families, name + "_seconds", labels);
            BOOST_TEST_REQUIRE(h, name);
            BOOST_TEST(h->histogram.sample_count == value.count, name);
        } else if constexpr (std::is_same_v<value_type, std::array<std::size_t, 3>>) {
            auto low = labels;
            low.emplace("priority", "low");
            BOOST_TEST_REQUIRE(sample(families, name, low), name);
            BOOST_TEST(sample(families, name, low)->gauge.value == double(value[0]));
        } else if (field.kind == ab::metric_kind::counter) {
            const auto* s = sample(families, name + "_total", labels);
            BOOST_TEST_REQUIRE(s, name);
            BOOST_TEST(s->counter.value == double(value), name);
            BOOST_TEST((family(families, name + "_total")->type == prometheus::MetricType::Counter));
        } else {
            const auto* s = sample(families, name, labels);
            BOOST_TEST_REQUIRE(s, name);
            BOOST_TEST(s->gauge.value == double(value), name);
            BOOST_TEST((family(families, name)->type == prometheus::MetricType::Gauge));
        }
    });
}

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_exact_at_their_edges_and_end_in_inf_equal_to_count)
{
    ab::blocking_pool pool({.max_threads = 4});
    ab::prometheus_collector collector(pool);
    run_calls(pool.get_executor(), 10, 3ms); // each runs at least 3 ms > 2^21 ns (2.1 ms)
    BOOST_TEST(test::eventually([&] { return pool.metrics().run_time.count == 10; }));

    const Families families = collector.Collect();
    const auto* run = sample(families, "asio_blocking_run_time_seconds", {});
    BOOST_TEST_REQUIRE(run);
    BOOST_TEST((family(families, "asio_blocking_run_time_seconds")->type == prometheus::MetricType::Histogram));
    const auto& h = run->histogram;
    BOOST_TEST(h.sample_count == 10u);
    BOOST_TEST(h.sample_sum >= 10 * 0.003);
    BOOST_TEST_REQUIRE(h.bucket.size() >= 2u);
    for (std::size_t i = 1; i < h.bucket.size(); ++i) {
        BOOST_TEST(h.bucket[i].upper_bound > h.bucket[i - 1].upper_bound);
        BOOST_TEST(h.bucket[i].cumulative_count >= h.bucket[i - 1].cumulative_count);
    }
    BOOST_TEST(std::isinf(h.bucket.back().upper_bound));
    BOOST_TEST(h.bucket.back().cumulative_count == h.sample_count);
    for (const auto& b : h.bucket) {
        if (b.upper_bound <= 0.002) // below every observation
            BOOST_TEST(b.cumulative_count == 0u, b.upper_bound);
        if (b.upper_bound >= 30.0) // above every observation
            BOOST_TEST(b.cumulative_count == 10u, b.upper_bound);
    }
    const auto* wait = sample(families, "asio_blocking_queue_wait_seconds", {});
    BOOST_TEST_REQUIRE(wait);
    BOOST_TEST(wait->histogram.bucket.back().cumulative_count == wait->histogram.sample_count);
    BOOST_TEST(wait->histogram.sample_count == pool.metrics().queue_wait.count);
}

BOOST_AUTO_TEST_CASE(lanes_appear_with_their_pool_labels_and_their_name)
{
    ab::blocking_pool pool({.max_threads = 4});
    ab::lane db{pool, 3, "db"};
    ab::lane fs{pool, 2, "fs"};
    ab::prometheus_collector collector(pool, {{"pool", "main"}});
    collector.add(db);
    collector.add(fs);
    run_calls(db.get_executor(), 5);
    BOOST_TEST(test::eventually([&] { return db.metrics().completed == 5; }));

    const Families families = collector.Collect();
    const auto* db_done = sample(families, "asio_blocking_lane_completed_total", {{"pool", "main"}, {"lane", "db"}});
    const auto* fs_done = sample(families, "asio_blocking_lane_completed_total", {{"pool", "main"}, {"lane", "fs"}});
    BOOST_TEST_REQUIRE(db_done);
    BOOST_TEST_REQUIRE(fs_done);
    BOOST_TEST(db_done->counter.value == 5.0);
    BOOST_TEST(fs_done->counter.value == 0.0);
    BOOST_TEST(sample(families, "asio_blocking_lane_limit", {{"pool", "main"}, {"lane", "db"}})->gauge.value == 3.0);
    BOOST_TEST(sample(families, "asio_blocking_lane_limit", {{"pool", "main"}, {"lane", "fs"}})->gauge.value == 2.0);
}

BOOST_AUTO_TEST_CASE(pools_share_one_family_per_name_in_the_exposition)
{
    ab::blocking_pool a, b;
    ab::prometheus_collector collector;
    collector.add(a, {{"pool", "a"}});
    collector.add(b, {{"pool", "b"}});
    const std::string text = prometheus::TextSerializer().Serialize(collector.Collect());
    auto occurrences = [&](const std::string& needle) {
        std::size_t n = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
            ++n;
        return n;
    };
    BOOST_TEST(occurrences("# TYPE asio_blocking_threads gauge\n") == 1u);
    BOOST_TEST(occurrences("# TYPE asio_blocking_submitted_total counter\n") == 1u);
    BOOST_TEST(occurrences("# TYPE asio_blocking_queue_wait_seconds histogram\n") == 1u);
    BOOST_TEST(occurrences("asio_blocking_threads{pool=\"a\"}") == 1u);
    BOOST_TEST(occurrences("asio_blocking_threads{pool=\"b\"}") == 1u);
    BOOST_TEST(occurrences("asio_blocking_queue_wait_seconds_bucket{pool=\"a\",le=\"+Inf\"}") == 1u);
}

BOOST_AUTO_TEST_CASE(a_destroyed_pool_and_its_lanes_leave_the_next_scrape)
{
    ab::prometheus_collector collector;
    ab::blocking_pool kept;
    collector.add(kept, {{"pool", "kept"}});
    {
        ab::blocking_pool gone;
        ab::lane lane{gone, 1, "l"};
        collector.add(gone, {{"pool", "gone"}});
        collector.add(lane);
        run_calls(lane.get_executor(), 2);
        BOOST_TEST(
            sample(collector.Collect(), "asio_blocking_lane_completed_total", {{"pool", "gone"}, {"lane", "l"}}));
    }
    const Families families = collector.Collect();
    BOOST_TEST(sample(families, "asio_blocking_threads", {{"pool", "kept"}}));
    BOOST_TEST(!sample(families, "asio_blocking_threads", {{"pool", "gone"}}));
    BOOST_TEST(!family(families, "asio_blocking_lane_completed_total"));
    // Its labels are free again.
    ab::blocking_pool successor;
    BOOST_CHECK_NO_THROW(collector.add(successor, {{"pool", "gone"}}));
}

BOOST_AUTO_TEST_CASE(scraping_while_pools_are_destroyed_is_safe)
{
    ab::prometheus_collector collector;
    std::atomic<int> scrapes{0};
    std::jthread scraper([&](std::stop_token stop) { // joined on every way out of the test
        while (!stop.stop_requested()) {
            (void)collector.Collect();
            scrapes.fetch_add(1);
        }
    });
    for (int i = 0; i < 20; ++i) {
        ab::blocking_pool pool({.max_threads = 2});
        ab::lane lane{pool, 1, "l"};
        collector.add(pool, {{"pool", "p"}}); // the same labels each time: the last pool is gone
        collector.add(lane);
        run_calls(lane.get_executor(), 3);
        const int seen = scrapes.load();
        BOOST_TEST(test::eventually([&] { return scrapes.load() > seen; }));
    }
    scraper.request_stop();
    scraper.join();
    BOOST_TEST(collector.Collect().empty());
}

BOOST_AUTO_TEST_CASE(the_collector_may_go_before_its_pools)
{
    ab::blocking_pool pool;
    ab::lane lane{pool, 1, "l"};
    {
        auto collector = std::make_shared<ab::prometheus_collector>(pool);
        collector->add(lane);
        BOOST_TEST(!collector->Collect().empty());
    }
    run_calls(lane.get_executor(), 1); // the pool and lane go on working
    BOOST_TEST(lane.metrics().completed == 1u);
}

BOOST_AUTO_TEST_CASE(bad_labels_and_duplicates_are_refused)
{
    ab::blocking_pool a, b, c;
    ab::lane lane_of_c{c, 1, "x"};
    ab::prometheus_collector collector;
    BOOST_CHECK_THROW(collector.add(a, {{"lane", "x"}}), std::invalid_argument);
    BOOST_CHECK_THROW(collector.add(a, {{"le", "x"}}), std::invalid_argument);
    BOOST_CHECK_THROW(collector.add(a, {{"not a name", "x"}}), std::invalid_argument);
    collector.add(a, {{"pool", "a"}});
    BOOST_CHECK_THROW(collector.add(a, {{"pool", "other"}}), std::invalid_argument);
    BOOST_CHECK_THROW(collector.add(b, {{"pool", "a"}}), std::invalid_argument);
    BOOST_CHECK_THROW(collector.add(lane_of_c), std::invalid_argument);
    ab::lane first{a, 1, "same"}, second{a, 1, "same"};
    collector.add(first);
    BOOST_CHECK_THROW(collector.add(first), std::invalid_argument);
    BOOST_CHECK_THROW(collector.add(second), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
