// Validation of pool_options.
#include <asio_blocking/pool_options.hpp>

#include <stdexcept>

namespace asio_blocking {

void validate(const pool_options& o)
{
    if (o.max_threads == 0)
        throw std::invalid_argument("asio_blocking::pool_options: max_threads must be at least 1");
    if (o.min_threads > o.max_threads)
        throw std::invalid_argument("asio_blocking::pool_options: min_threads (" + std::to_string(o.min_threads) +
                                    ") must not exceed max_threads (" + std::to_string(o.max_threads) + ")");
    if (o.idle_timeout < std::chrono::steady_clock::duration::zero())
        throw std::invalid_argument("asio_blocking::pool_options: idle_timeout must not be negative");
    switch (o.worker_scheduling) {
    case os_scheduling::normal:
    case os_scheduling::low:
    case os_scheduling::idle:
        break;
    default:
        throw std::invalid_argument("asio_blocking::pool_options: worker_scheduling is not an os_scheduling value");
    }
}

} // namespace asio_blocking
