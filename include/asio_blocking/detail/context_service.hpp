// The service asio_blocking keeps in each execution context it delivers to: the context's
// registry of pending calls, and the context's default pool.
#ifndef ASIO_BLOCKING_DETAIL_CONTEXT_SERVICE_HPP
#define ASIO_BLOCKING_DETAIL_CONTEXT_SERVICE_HPP

#include <asio_blocking/detail/caller_registry.hpp>
#include <asio_blocking/pool_options.hpp>

#include <boost/asio/execution_context.hpp>

#include <memory>
#include <mutex>
#include <optional>

namespace asio_blocking {
class blocking_pool;
}

namespace asio_blocking::detail {

/// Owned by its execution context, so it is shut down with it (before the context's scheduler):
/// pending handlers are destroyed there, and the default pool is stopped and joined there, the
/// way Asio's resolver service joins its private thread. No static-destruction-order hazards.
class context_service final : public boost::asio::execution_context::service {
public:
    static inline boost::asio::execution_context::id id;

    explicit context_service(boost::asio::execution_context& ctx);
    ~context_service() override;

    /// The context's registry of pending calls (the service holds one reference).
    caller_registry& registry() noexcept { return *registry_; }

    /// The default pool, created with the configured options on first use.
    blocking_pool& default_pool();

    /// Options for the default pool; throws std::logic_error once it exists.
    void configure(pool_options options);

    /// Marks this context as a blocking_pool, which is its own default pool.
    void set_self(blocking_pool* pool) noexcept { self_ = pool; }

private:
    void shutdown() override;

    std::mutex mutex_;
    std::optional<pool_options> options_;
    std::unique_ptr<blocking_pool> pool_;
    blocking_pool* self_ = nullptr;
    bool shut_down_ = false;
    caller_registry* registry_;
};

} // namespace asio_blocking::detail

#endif
