// Error codes of asio_blocking, in their own boost::system category.
#ifndef ASIO_BLOCKING_ERROR_HPP
#define ASIO_BLOCKING_ERROR_HPP

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace asio_blocking {

/// Errors a blocking call can complete with, besides `boost::asio::error::operation_aborted`
/// (cancelled, or the pool stopped) and whatever `fn` throws. They arrive as a
/// `boost::system::system_error` inside the handler's `std::exception_ptr`.
enum class error {
    /// The pool's queue was at capacity and its overflow policy is `reject`.
    queue_full = 1,
    /// The call had not started when its queue deadline passed; `fn` never ran.
    deadline_expired,
};

/// The category of `asio_blocking::error`; its name is "asio_blocking".
const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

} // namespace asio_blocking

template <>
struct boost::system::is_error_code_enum<asio_blocking::error> : std::true_type {
};

#endif
