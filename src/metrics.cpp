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

constexpr const char* priority_names[] = {"low", "normal", "high"};

struct text_field {
    std::ostream& os;
    bool first = true;

    void name(const char* n)
    {
        os << (first ? "" : " ") << n << '=';
        first = false;
    }
    template <typename Number>
    void operator()(const char* n, Number v)
    {
        name(n);
        os << v;
    }
    void operator()(const char* n, const std::array<std::size_t, 3>& levels)
    {
        name(n);
        os << '{';
        for (std::size_t i = 0; i < levels.size(); ++i)
            os << (i ? " " : "") << priority_names[i] << '=' << levels[i];
        os << '}';
    }
    void operator()(const char* n, const latency_summary& l)
    {
        name(n);
        os << "{n=" << l.count << " p50=";
        print_duration(os, l.p50);
        os << " p90=";
        print_duration(os, l.p90);
        os << " p99=";
        print_duration(os, l.p99);
        os << " max=";
        print_duration(os, l.max);
        os << '}';
    }
};

struct json_field {
    std::ostream& os;
    bool first = true;

    void name(const char* n)
    {
        os << (first ? "" : ",") << '"' << n << "\":";
        first = false;
    }
    template <typename Number>
    void operator()(const char* n, Number v)
    {
        name(n);
        os << v;
    }
    void operator()(const char* n, const std::array<std::size_t, 3>& levels)
    {
        name(n);
        os << '{';
        for (std::size_t i = 0; i < levels.size(); ++i)
            os << (i ? "," : "") << '"' << priority_names[i] << "\":" << levels[i];
        os << '}';
    }
    void operator()(const char* n, const latency_summary& l)
    {
        name(n);
        os << "{\"count\":" << l.count << ",\"p50_ns\":" << l.p50.count() << ",\"p90_ns\":" << l.p90.count()
           << ",\"p99_ns\":" << l.p99.count() << ",\"max_ns\":" << l.max.count() << '}';
    }
};

} // namespace

std::ostream& operator<<(std::ostream& os, const pool_metrics& m)
{
    for_each_field(m, text_field{os});
    return os;
}

std::string to_json(const pool_metrics& m)
{
    std::ostringstream os;
    os << '{';
    for_each_field(m, json_field{os});
    os << '}';
    return os.str();
}

} // namespace asio_blocking
