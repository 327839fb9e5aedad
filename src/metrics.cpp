// Summaries of latency histograms, and the text and JSON forms of pool_metrics.
#include <asio_blocking/detail/latency_histogram.hpp>
#include <asio_blocking/metrics.hpp>

#include <algorithm>
#include <ostream>
#include <sstream>

namespace asio_blocking {
namespace detail {

latency_summary latency_histogram::summary() const noexcept
{
    latency_summary s;
    s.count = count_;
    s.max = std::chrono::nanoseconds(max_);
    if (count_ == 0)
        return s;
    auto percentile = [&](double q) {
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (unsigned b = 0; b < bucket_count; ++b) {
            seen += buckets_[b];
            if (seen >= rank)
                return std::chrono::nanoseconds(std::min(upper_bound_of(b), max_));
        }
        return std::chrono::nanoseconds(max_);
    };
    s.p50 = percentile(0.50);
    s.p90 = percentile(0.90);
    s.p99 = percentile(0.99);
    return s;
}

} // namespace detail

namespace {

void print_duration(std::ostream& os, std::chrono::nanoseconds d)
{
    const auto ns = d.count();
    if (ns < 10'000)
        os << ns << "ns";
    else if (ns < 10'000'000)
        os << ns / 1000 << "us";
    else
        os << ns / 1'000'000 << "ms";
}

void print_latency(std::ostream& os, const char* name, const latency_summary& l)
{
    os << ' ' << name << "{n=" << l.count << " p50=";
    print_duration(os, l.p50);
    os << " p90=";
    print_duration(os, l.p90);
    os << " p99=";
    print_duration(os, l.p99);
    os << " max=";
    print_duration(os, l.max);
    os << '}';
}

void json_latency(std::ostream& os, const char* name, const latency_summary& l)
{
    os << '"' << name << "\":{\"count\":" << l.count << ",\"p50_ns\":" << l.p50.count()
       << ",\"p90_ns\":" << l.p90.count() << ",\"p99_ns\":" << l.p99.count() << ",\"max_ns\":" << l.max.count() << '}';
}

} // namespace

std::ostream& operator<<(std::ostream& os, const pool_metrics& m)
{
    os << "threads=" << m.threads << " (idle=" << m.idle_threads << " busy=" << m.busy_threads
       << ") queued=" << m.queued << " waiting_admission=" << m.waiting_admission
       << " waiting_in_lanes=" << m.waiting_in_lanes << " effective_max_threads=" << m.effective_max_threads
       << " cpu_bound_running=" << m.cpu_bound_running << " submitted=" << m.submitted << " completed=" << m.completed
       << " failed=" << m.failed << " cancelled=" << m.cancelled << " (abandoned=" << m.abandoned
       << ") rejected=" << m.rejected << " expired=" << m.expired << " started=" << m.threads_started
       << " retired=" << m.threads_retired << " start_failures=" << m.thread_start_failures
       << " peak_threads=" << m.peak_threads << " peak_queued=" << m.peak_queued;
    print_latency(os, "queue_wait", m.queue_wait);
    print_latency(os, "run_time", m.run_time);
    return os;
}

std::string to_json(const pool_metrics& m)
{
    std::ostringstream os;
    os << "{\"threads\":" << m.threads << ",\"idle_threads\":" << m.idle_threads
       << ",\"busy_threads\":" << m.busy_threads << ",\"queued\":" << m.queued
       << ",\"queued_by_priority\":{\"low\":" << m.queued_by_priority[0] << ",\"normal\":" << m.queued_by_priority[1]
       << ",\"high\":" << m.queued_by_priority[2] << "},\"waiting_admission\":" << m.waiting_admission
       << ",\"waiting_in_lanes\":" << m.waiting_in_lanes << ",\"outstanding_work\":" << m.outstanding_work
       << ",\"effective_max_threads\":" << m.effective_max_threads << ",\"cpu_bound_running\":" << m.cpu_bound_running
       << ",\"submitted\":" << m.submitted << ",\"completed\":" << m.completed << ",\"failed\":" << m.failed
       << ",\"cancelled\":" << m.cancelled << ",\"abandoned\":" << m.abandoned << ",\"rejected\":" << m.rejected
       << ",\"expired\":" << m.expired << ",\"threads_started\":" << m.threads_started
       << ",\"threads_retired\":" << m.threads_retired << ",\"thread_start_failures\":" << m.thread_start_failures
       << ",\"hook_failures\":" << m.hook_failures << ",\"peak_threads\":" << m.peak_threads
       << ",\"peak_queued\":" << m.peak_queued << ',';
    json_latency(os, "queue_wait", m.queue_wait);
    os << ',';
    json_latency(os, "run_time", m.run_time);
    os << '}';
    return os.str();
}

} // namespace asio_blocking
