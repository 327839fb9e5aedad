// prometheus_collector: a prometheus-cpp Collectable that reads pools and lanes when scraped.
#ifndef ASIO_BLOCKING_PROMETHEUS_HPP
#define ASIO_BLOCKING_PROMETHEUS_HPP

#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/lane.hpp>

#include <prometheus/collectable.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <vector>

namespace asio_blocking {

/// A `prometheus::Collectable` reading pools' and lanes' metrics when it is collected.
/**
 * Nothing runs between scrapes and no call pays anything: `Collect()` takes one snapshot per
 * pool (under the pool's lock, once) and one per lane, and turns them into families named
 * `asio_blocking_*` (see the README's table): gauges, `_total` counters, and the queue-wait and
 * run-time histograms in seconds, cumulative since the pool started.
 * @code
 * auto metrics = std::make_shared<asio_blocking::prometheus_collector>(pool, prometheus::Labels{{"pool", "io"}});
 * metrics->add(db_lane);                // asio_blocking_lane_* series with pool="io", lane="db"
 * exposer.RegisterCollectable(metrics); // the exposer holds a weak_ptr: keep `metrics` alive
 * @endcode
 * One collector serves any number of pools, each with its own constant labels. Put all pools in
 * one collector: an exposition may hold each family only once.
 *
 * @par Lifetimes
 * The collector refers to pools weakly. A pool may be destroyed while added: its series leave
 * the next scrape (as soon as the pool's engine is gone: when the pool is destroyed, or, after a
 * `join_for` that gave up, when the last thread left behind exits). Collector, pools and lanes
 * may be destroyed in any order. All member functions may be called concurrently.
 */
class prometheus_collector : public ::prometheus::Collectable {
public:
    /// A collector with no pools yet.
    prometheus_collector();

    /// A collector of `pool`, as if by `add(pool, labels)`.
    explicit prometheus_collector(const blocking_pool& pool, ::prometheus::Labels labels = {});

    prometheus_collector(const prometheus_collector&) = delete;
    prometheus_collector& operator=(const prometheus_collector&) = delete;
    ~prometheus_collector() override;

    /// Adds `pool`; its series carry `labels` (e.g. `{{"pool", "db"}}`).
    /**
     * Throws `std::invalid_argument` for an invalid label name or one the collector uses itself
     * (`lane`, `le`, `priority`), or if `pool` is added already, or another pool with the same labels;
     * the collector is then unchanged.
     */
    void add(const blocking_pool& pool, ::prometheus::Labels labels = {});

    /// Adds `lane`: `asio_blocking_lane_*` series with its pool's labels and `lane="<name>"`.
    /**
     * Throws `std::invalid_argument` if the lane's pool has not been added, or if a lane of the
     * same name (or this lane) has; the collector is then unchanged.
     */
    void add(const lane& lane);

    /// The families of every pool still alive, each family once.
    std::vector<::prometheus::MetricFamily> Collect() const override;

private:
    struct state;
    std::unique_ptr<state> state_;
};

} // namespace asio_blocking

#endif
