// The "asio_blocking" error category.
#include <asio_blocking/error.hpp>

#include <string>

namespace asio_blocking {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "asio_blocking"; }

    std::string message(int ev) const override
    {
        switch (static_cast<error>(ev)) {
        case error::queue_full:
            return "the blocking pool's queue is full";
        case error::deadline_expired:
            return "the call's queue deadline passed before it started";
        }
        return "asio_blocking error " + std::to_string(ev);
    }
};

} // namespace

const boost::system::error_category& error_category() noexcept
{
    static const category instance;
    return instance;
}

} // namespace asio_blocking
