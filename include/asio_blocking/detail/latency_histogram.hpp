// A fixed-size log-scale histogram of durations; cheap to record under the pool's lock.
#ifndef ASIO_BLOCKING_DETAIL_LATENCY_HISTOGRAM_HPP
#define ASIO_BLOCKING_DETAIL_LATENCY_HISTOGRAM_HPP

#include <asio_blocking/metrics.hpp>

#include <array>
#include <bit>
#include <cstdint>

namespace asio_blocking::detail {

class latency_histogram {
public:
    static constexpr unsigned sub_bits = 3; // 8 buckets per power of two
    static constexpr unsigned bucket_count = (64 - sub_bits + 1) << sub_bits;

    void record(std::uint64_t ns) noexcept
    {
        ++buckets_[bucket_of(ns)];
        ++count_;
        sum_ += ns; // wraps only after 584 years of summed latency
        if (ns > max_)
            max_ = ns;
    }

    latency_summary summary() const noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t sum_ns() const noexcept { return sum_; }
    std::uint64_t bucket(unsigned b) const noexcept { return buckets_[b]; }

    static unsigned bucket_of(std::uint64_t ns) noexcept
    {
        // Values below 2^sub_bits get a bucket each; above, the top sub_bits+1 bits pick one.
        if (ns < (1u << sub_bits))
            return static_cast<unsigned>(ns);
        const unsigned exponent = static_cast<unsigned>(std::bit_width(ns)) - 1;
        const unsigned shift = exponent - sub_bits;
        return ((shift + 1) << sub_bits) + static_cast<unsigned>((ns >> shift) & ((1u << sub_bits) - 1));
    }

    /// The largest value that falls in `bucket` (percentiles report this upper edge).
    static std::uint64_t upper_bound_of(unsigned bucket) noexcept
    {
        if (bucket < (1u << sub_bits))
            return bucket;
        const unsigned shift = (bucket >> sub_bits) - 1;
        const std::uint64_t mantissa = (1u << sub_bits) | (bucket & ((1u << sub_bits) - 1));
        return ((mantissa + 1) << shift) - 1;
    }

private:
    std::array<std::uint64_t, bucket_count> buckets_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
};

} // namespace asio_blocking::detail

#endif
