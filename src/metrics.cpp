// Summaries of latency histograms, and the text and JSON forms of pool_metrics and lane_metrics.
#include <asio_blocking/detail/latency_histogram.hpp>
#include <asio_blocking/lane_metrics.hpp>
#include <asio_blocking/metrics.hpp>

#include <algorithm>
#include <ostream>
#include <sstream>
#include <type_traits>

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

template <typename T>
constexpr bool is_latency = std::is_same_v<std::decay_t<T>, latency_summary>;
template <typename T>
constexpr bool is_by_priority = std::is_same_v<std::decay_t<T>, std::array<std::size_t, 3>>;

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

void json_string(std::ostream& os, const std::string& s)
{
    os << '"';
    for (const char c : s) {
        if (c == '"' || c == '\\')
            os << '\\' << c;
        else if (static_cast<unsigned char>(c) < 0x20) {
            constexpr char hex[] = "0123456789abcdef";
            os << "\\u00" << hex[(c >> 4) & 0xf] << hex[c & 0xf];
        } else
            os << c;
    }
    os << '"';
}

} // namespace

std::ostream& operator<<(std::ostream& os, const pool_metrics& m)
{
    const char* separator = "";
    for_each_field(m, [&](const metric_field& f, const auto& v) {
        os << separator;
        separator = " ";
        if constexpr (is_latency<decltype(v)>) {
            os << f.name << "{n=" << v.count << " p50=";
            print_duration(os, v.p50);
            os << " p90=";
            print_duration(os, v.p90);
            os << " p99=";
            print_duration(os, v.p99);
            os << " max=";
            print_duration(os, v.max);
            os << '}';
        } else if constexpr (is_by_priority<decltype(v)>) {
            os << f.name << '=' << v[0] << '/' << v[1] << '/' << v[2];
        } else {
            os << f.name << '=' << v;
        }
    });
    return os;
}

std::string to_json(const pool_metrics& m)
{
    std::ostringstream os;
    char separator = '{';
    for_each_field(m, [&](const metric_field& f, const auto& v) {
        os << separator << '"' << f.name << "\":";
        separator = ',';
        if constexpr (is_latency<decltype(v)>)
            os << "{\"count\":" << v.count << ",\"p50_ns\":" << v.p50.count() << ",\"p90_ns\":" << v.p90.count()
               << ",\"p99_ns\":" << v.p99.count() << ",\"max_ns\":" << v.max.count() << '}';
        else if constexpr (is_by_priority<decltype(v)>)
            os << "{\"low\":" << v[0] << ",\"normal\":" << v[1] << ",\"high\":" << v[2] << '}';
        else
            os << v;
    });
    os << '}';
    return os.str();
}

std::string to_json(const lane_metrics& m)
{
    std::ostringstream os;
    os << "{\"name\":";
    json_string(os, m.name);
    for_each_field(m, [&](const metric_field& f, std::uint64_t v) { os << ",\"" << f.name << "\":" << v; });
    os << '}';
    return os.str();
}

} // namespace asio_blocking
