// Measures an event loop's responsiveness: a periodic timer on the loop records how late each
// tick fires. Shared by the demo and the benchmark.
#ifndef ASIO_BLOCKING_EXAMPLE_LOOP_LAG_PROBE_HPP
#define ASIO_BLOCKING_EXAMPLE_LOOP_LAG_PROBE_HPP

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

namespace example {

class loop_lag_probe {
public:
    using clock = std::chrono::steady_clock;

    loop_lag_probe(boost::asio::io_context& io, clock::duration period)
        : timer_(io)
        , period_(period)
    {
    }

    void start()
    {
        stopped_ = false;
        expected_ = clock::now() + period_;
        arm();
    }

    /// Stops ticking, so the loop can run out of work.
    void stop()
    {
        stopped_ = true;
        timer_.cancel();
    }

    /// Every tick's lag, in microseconds.
    const std::vector<double>& lags_us() const { return lags_us_; }

    /// The largest lag since the previous call, in microseconds.
    double take_interval_max_us() { return std::exchange(interval_max_us_, 0.0); }

private:
    void arm()
    {
        timer_.expires_at(expected_);
        timer_.async_wait([this](boost::system::error_code ec) {
            if (ec || stopped_)
                return;
            const double lag = std::chrono::duration<double, std::micro>(clock::now() - expected_).count();
            lags_us_.push_back(lag);
            interval_max_us_ = std::max(interval_max_us_, lag);
            expected_ += period_;
            if (expected_ < clock::now()) // fell behind by more than a period: do not burst
                expected_ = clock::now() + period_;
            arm();
        });
    }

    boost::asio::steady_timer timer_;
    clock::duration period_;
    clock::time_point expected_;
    std::vector<double> lags_us_;
    double interval_max_us_ = 0;
    bool stopped_ = false;
};

} // namespace example

#endif
