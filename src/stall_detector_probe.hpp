// White-box view of a stall_detector for the tests: which threads it knows run the loop.
#ifndef ASIO_BLOCKING_SRC_STALL_DETECTOR_PROBE_HPP
#define ASIO_BLOCKING_SRC_STALL_DETECTOR_PROBE_HPP

#include <asio_blocking/stall_detector.hpp>

#include <sys/types.h>
#include <vector>

namespace asio_blocking::detail {

struct stall_detector_probe {
    /// Threads that have run the detector's heartbeat (or constructed it on the loop).
    static std::vector<pid_t> watched_threads(const stall_detector& d);
};

} // namespace asio_blocking::detail

#endif
