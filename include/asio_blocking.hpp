// asio_blocking: run blocking calls on an adaptive thread pool from Boost.Asio code.
#ifndef ASIO_BLOCKING_HPP
#define ASIO_BLOCKING_HPP

#include <asio_blocking/async_blocking.hpp>
#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/default_pool.hpp>
#include <asio_blocking/error.hpp>
#include <asio_blocking/lane.hpp>
#include <asio_blocking/lane_metrics.hpp>
#include <asio_blocking/metrics.hpp>
#include <asio_blocking/pool_options.hpp>
#include <asio_blocking/priority.hpp>
#include <asio_blocking/queue_timeout.hpp>
#include <asio_blocking/stall_detector.hpp>

#endif
