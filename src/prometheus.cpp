// The Prometheus collector: pool and lane snapshots turned into metric families at scrape time.
#include "engine/coordinator.hpp"

#include <asio_blocking/detail/latency_histogram.hpp>
#include <asio_blocking/prometheus.hpp>

#include <prometheus/check_names.h>

#include <algorithm>
#include <array>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace asio_blocking {

namespace {

using detail::latency_histogram;
using ::prometheus::ClientMetric;
using ::prometheus::MetricFamily;
using ::prometheus::MetricType;

/// Histogram edges: powers of two nanoseconds from 2^10 (about 1 us) to 2^35 (about 34 s).
/// They coincide with edges of the pool's own log-scale buckets, so the counts are exact.
constexpr unsigned first_edge_log2 = 10;
constexpr unsigned last_edge_log2 = 35;

const char* const priority_names[] = {"low", "normal", "high"};

struct lane_entry {
    const detail::lane_state* core;
    std::string name;
};

/// A counted reference to a pool's engine: it keeps the engine (and its lanes) readable, not
/// the pool or its threads, until the entry is forgotten.
class engine_ref {
public:
    explicit engine_ref(detail::coordinator& e) noexcept
        : engine_(&e)
    {
        e.retain();
    }
    engine_ref(engine_ref&& other) noexcept
        : engine_(std::exchange(other.engine_, nullptr))
    {
    }
    engine_ref& operator=(engine_ref&& other) noexcept
    {
        std::swap(engine_, other.engine_);
        return *this;
    }
    ~engine_ref()
    {
        if (engine_)
            engine_->release();
    }
    const detail::coordinator& operator*() const noexcept { return *engine_; }
    const detail::coordinator* get() const noexcept { return engine_; }

private:
    detail::coordinator* engine_;
};

struct pool_entry {
    engine_ref core;
    ::prometheus::Labels labels;
    std::vector<lane_entry> lanes;
};

detail::coordinator& engine_of(const blocking_pool& pool) noexcept
{
    return detail::coordinator::of(pool.core());
}

/// Families in order of first appearance, each name once however many pools report it.
class family_set {
public:
    MetricFamily& get(std::string name, const char* help, MetricType type)
    {
        const auto [it, inserted] = index_.try_emplace(name, families_.size());
        if (inserted)
            families_.push_back(MetricFamily{std::move(name), help, type, {}});
        return families_[it->second];
    }

    std::vector<MetricFamily> take() && { return std::move(families_); }

private:
    std::vector<MetricFamily> families_;
    std::unordered_map<std::string, std::size_t> index_;
};

ClientMetric labelled(const ::prometheus::Labels& labels)
{
    ClientMetric m;
    for (const auto& [name, value] : labels)
        m.label.push_back({name, value});
    return m;
}

void add_scalar(family_set& families, const std::string& name, const metric_field& field,
                const ::prometheus::Labels& labels, std::uint64_t value)
{
    ClientMetric m = labelled(labels);
    if (field.kind == metric_kind::counter) {
        m.counter.value = static_cast<double>(value);
        families.get(name + "_total", field.help, MetricType::Counter).metric.push_back(std::move(m));
    } else {
        m.gauge.value = static_cast<double>(value);
        families.get(name, field.help, MetricType::Gauge).metric.push_back(std::move(m));
    }
}

void add_histogram(family_set& families, const std::string& name, const metric_field& field,
                   const ::prometheus::Labels& labels, const latency_histogram& h)
{
    ClientMetric m = labelled(labels);
    m.histogram.sample_count = h.count();
    m.histogram.sample_sum = static_cast<double>(h.sum_ns()) * 1e-9;
    std::uint64_t cumulative = 0;
    unsigned bucket = 0;
    for (unsigned e = first_edge_log2; e <= last_edge_log2; ++e) {
        const std::uint64_t edge_ns = std::uint64_t{1} << e;
        // Every value below edge_ns lies in a bucket before the one edge_ns starts.
        for (const unsigned end = latency_histogram::bucket_of(edge_ns); bucket < end; ++bucket)
            cumulative += h.bucket(bucket);
        m.histogram.bucket.push_back({cumulative, static_cast<double>(edge_ns) * 1e-9});
    }
    m.histogram.bucket.push_back({h.count(), std::numeric_limits<double>::infinity()});
    families.get(name + "_seconds", field.help, MetricType::Histogram).metric.push_back(std::move(m));
}

void collect_pool(family_set& families, const pool_entry& entry, const detail::coordinator& core)
{
    latency_histogram queue_wait, run_time;
    const pool_metrics snapshot = core.metrics(queue_wait, run_time);
    for_each_field(snapshot, [&](const metric_field& field, const auto& value) {
        const std::string name = std::string("asio_blocking_") + field.name;
        using value_type = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<value_type, latency_summary>) {
            if (name == "asio_blocking_queue_wait")
                add_histogram(families, name, field, entry.labels, queue_wait);
            else if (name == "asio_blocking_run_time")
                add_histogram(families, name, field, entry.labels, run_time);
        } else if constexpr (std::is_same_v<value_type, std::array<std::size_t, 3>>) {
            for (std::size_t p = 0; p < value.size(); ++p) {
                auto labels = entry.labels;
                labels.emplace("priority", priority_names[p]);
                add_scalar(families, name, field, labels, value[p]);
            }
        } else {
            add_scalar(families, name, field, entry.labels, value);
        }
    });
    for (const lane_entry& lane : entry.lanes) {
        auto labels = entry.labels;
        labels.emplace("lane", lane.name);
        for_each_field(core.metrics(lane.core), [&](const metric_field& field, std::uint64_t value) {
            add_scalar(families, std::string("asio_blocking_lane_") + field.name, field, labels, value);
        });
    }
}

} // namespace

struct prometheus_collector::state {
    std::mutex mutex;
    std::vector<pool_entry> pools;

    /// Forgets destroyed pools, so their labels may be used again, and lets go of their engines.
    void prune_locked()
    {
        std::erase_if(pools, [](const pool_entry& p) { return (*p.core).pool_destroyed(); });
    }
};

prometheus_collector::prometheus_collector()
    : state_(std::make_unique<state>())
{
}

prometheus_collector::prometheus_collector(const blocking_pool& pool, ::prometheus::Labels labels)
    : prometheus_collector()
{
    add(pool, std::move(labels));
}

prometheus_collector::~prometheus_collector() = default;

void prometheus_collector::add(const blocking_pool& pool, ::prometheus::Labels labels)
{
    for (const auto& [name, value] : labels) {
        if (!::prometheus::CheckLabelName(name))
            throw std::invalid_argument("asio_blocking::prometheus_collector: invalid label name '" + name + "'");
        if (name == "lane" || name == "le" || name == "priority")
            throw std::invalid_argument("asio_blocking::prometheus_collector: label name '" + name +
                                        "' is used by the collector itself");
    }
    detail::coordinator& core = engine_of(pool);
    std::lock_guard lk(state_->mutex);
    state_->prune_locked();
    for (const pool_entry& p : state_->pools) {
        if (p.core.get() == &core)
            throw std::invalid_argument("asio_blocking::prometheus_collector: pool added twice");
        if (p.labels == labels)
            throw std::invalid_argument("asio_blocking::prometheus_collector: another pool has the same labels");
    }
    state_->pools.push_back({engine_ref(core), std::move(labels), {}});
}

void prometheus_collector::add(const lane& lane)
{
    const detail::coordinator* core = &engine_of(lane.pool());
    const std::string name = lane.metrics().name;
    std::lock_guard lk(state_->mutex);
    state_->prune_locked();
    const auto pool = std::find_if(state_->pools.begin(), state_->pools.end(),
                                   [&](const pool_entry& p) { return p.core.get() == core; });
    if (pool == state_->pools.end())
        throw std::invalid_argument("asio_blocking::prometheus_collector: add the lane's pool first");
    for (const lane_entry& l : pool->lanes)
        if (l.core == lane.core() || l.name == name)
            throw std::invalid_argument("asio_blocking::prometheus_collector: lane '" + name + "' added twice");
    pool->lanes.push_back({lane.core(), name});
}

std::vector<::prometheus::MetricFamily> prometheus_collector::Collect() const
{
    family_set families;
    std::lock_guard lk(state_->mutex);
    state_->prune_locked();
    // The entries hold their engines, so a pool destroyed during the snapshot leaves its
    // engine and lanes readable; it is forgotten at the next prune.
    for (const pool_entry& entry : state_->pools)
        collect_pool(families, entry, *entry.core);
    return std::move(families).take();
}

} // namespace asio_blocking
