// blocking_pool, lanes and the per-context service (registry of pending calls, default pool).
#include "engine/coordinator.hpp"

#include <asio_blocking/blocking_pool.hpp>
#include <asio_blocking/default_pool.hpp>
#include <asio_blocking/detail/context_service.hpp>
#include <asio_blocking/lane.hpp>

#include <stdexcept>

namespace asio_blocking {

// ---------------------------------------------------------------------------------------------
// blocking_pool

namespace {
detail::coordinator& engine_of(const blocking_pool& pool) noexcept
{
    return detail::coordinator::of(pool.core());
}
} // namespace

blocking_pool::blocking_pool(pool_options options)
    : core_(detail::coordinator::create(std::move(options)))
{
    try {
        boost::asio::use_service<detail::context_service>(*this).set_self(this);
    } catch (...) {
        engine_of(*this).shutdown();
        engine_of(*this).release();
        throw;
    }
}

blocking_pool::~blocking_pool()
{
    detail::coordinator& engine = engine_of(*this);
    engine.shutdown();
    // Services (handler registries of calls delivering to this pool) go before the engine.
    shutdown();
    destroy();
    engine.mark_pool_destroyed();
    engine.release();
}

blocking_pool::executor_type blocking_pool::get_executor() noexcept
{
    return executor_type(this, std::allocator<void>(), 0, detail::call_settings{});
}

void blocking_pool::stop() noexcept
{
    engine_of(*this).stop();
}

void blocking_pool::join()
{
    engine_of(*this).join();
}

bool blocking_pool::join_for(std::chrono::steady_clock::duration timeout)
{
    return engine_of(*this).join_for(timeout);
}

void blocking_pool::set_limits(std::size_t min_threads, std::size_t max_threads)
{
    engine_of(*this).set_limits(min_threads, max_threads);
}

pool_metrics blocking_pool::metrics() const
{
    return engine_of(*this).metrics();
}

// ---------------------------------------------------------------------------------------------
// lane

lane::lane(blocking_pool& pool, std::size_t limit, std::string name)
    : pool_(&pool)
    , core_(engine_of(pool).add_lane(std::move(name), limit))
{
}

void lane::set_limit(std::size_t limit)
{
    engine_of(*pool_).set_lane_limit(core_, limit);
}

lane_metrics lane::metrics() const
{
    return engine_of(*pool_).metrics(core_);
}

// ---------------------------------------------------------------------------------------------
// The per-context service

namespace detail {

context_service::context_service(boost::asio::execution_context& ctx)
    : boost::asio::execution_context::service(ctx)
    , registry_(new caller_registry(ctx))
{
}

context_service::~context_service()
{
    registry_->release();
}

void context_service::shutdown()
{
    registry_->shutdown();
    std::unique_ptr<blocking_pool> pool;
    {
        std::lock_guard lk(mutex_);
        shut_down_ = true;
        pool = std::move(pool_);
    }
    pool.reset(); // stop, then join: running calls finish before the context goes away
}

blocking_pool& context_service::default_pool()
{
    if (self_)
        return *self_;
    std::lock_guard lk(mutex_);
    if (!pool_) {
        if (shut_down_)
            throw std::logic_error("asio_blocking::default_pool: the execution context has shut down");
        pool_ = std::make_unique<blocking_pool>(options_.value_or(pool_options{}));
    }
    return *pool_;
}

void context_service::configure(pool_options options)
{
    if (self_)
        throw std::logic_error("asio_blocking::configure_default_pool: a blocking_pool is its own default pool");
    validate(options);
    std::lock_guard lk(mutex_);
    if (pool_ || shut_down_)
        throw std::logic_error("asio_blocking::configure_default_pool: the default pool is already in use");
    options_ = std::move(options);
}

} // namespace detail

blocking_pool& default_pool(boost::asio::execution_context& ctx)
{
    return boost::asio::use_service<detail::context_service>(ctx).default_pool();
}

void configure_default_pool(boost::asio::execution_context& ctx, pool_options options)
{
    boost::asio::use_service<detail::context_service>(ctx).configure(std::move(options));
}

} // namespace asio_blocking
