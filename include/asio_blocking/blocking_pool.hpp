// blocking_pool: an Asio execution context owning an adaptive pool of threads for blocking work.
#ifndef ASIO_BLOCKING_BLOCKING_POOL_HPP
#define ASIO_BLOCKING_BLOCKING_POOL_HPP

#include <asio_blocking/detail/call_target.hpp>
#include <asio_blocking/metrics.hpp>
#include <asio_blocking/pool_options.hpp>
#include <asio_blocking/priority.hpp>
#include <asio_blocking/queue_timeout.hpp>

#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>

#include <chrono>
#include <cstddef>
#include <memory>

namespace asio_blocking {

namespace detail {
class engine;
struct pool_executor_bits {
    static constexpr unsigned int blocking_never = 1;
    static constexpr unsigned int blocking_always = 2;
    static constexpr unsigned int relationship_continuation = 4;
    static constexpr unsigned int outstanding_work_tracked = 8;
};
} // namespace detail

class lane;

/// An execution context whose threads run blocking calls, started on demand and retired when idle.
/**
 * Work arrives through `async_blocking` (which hands the result back to the caller's executor)
 * or through the standard executor (`post`, `dispatch`, `defer`, `co_spawn`).
 *
 * @par Threads
 * `min_threads` are started by the constructor and kept. A backlog with every thread busy
 * starts one more (while fewer than `max_threads` exist) if most recent calls block (run 50 µs
 * or more), or if a running call's thread has slept for 10 ms; short calls, and calls whose
 * thread is merely runnable (computing, or preempted on a busy machine), are left to the threads
 * there are, so tiny work does not start threads. Before any call has finished, the second
 * thread starts once the oldest call has slept 50 µs, and each new thread may start two more
 * (a cold burst of blocking calls grows as a tree). After a failed thread start, growth pauses
 * for 50 ms. The most recently idle thread takes the next call, so under light load surplus
 * threads really idle out after `idle_timeout`.
 *
 * @par Shutdown
 * - `stop()`: refuse new work; calls still waiting complete with
 *   `boost::asio::error::operation_aborted` (posted functions are destroyed); running calls are
 *   asked to stop through their `std::stop_token` and deliver their own results. Completions for
 *   handlers bound to this pool still run on it. Does not block.
 * - `join()`: drain: run everything accepted, then join every thread. Once it has begun, only
 *   continuations are accepted: submissions from pool threads, from inside a completion handler
 *   of this pool's calls, or through a work-tracking executor of the pool; a fresh outside call
 *   is refused with `operation_aborted`. Throws `std::logic_error` if called from a pool thread.
 * - `join_for(t)`: as `join()` but gives up after `t` (`max()`: never): then behaves as
 *   `stop()`, leaves threads still running calls to finish on their own, and returns false.
 * - Destructor: `stop()`, then `join()` (threads are detached instead if `join_for` gave up,
 *   or if the destructor runs on a pool thread).
 *
 * @par Thread safety
 * All member functions may be called concurrently.
 */
class blocking_pool : public boost::asio::execution_context {
public:
    template <typename Allocator, unsigned int Bits>
    class basic_executor_type;

    /// The executor type: runs work on the pool at normal priority, untracked.
    using executor_type = basic_executor_type<std::allocator<void>, 0>;

    /// Starts `options.min_threads` threads. Throws `std::invalid_argument` for bad options.
    explicit blocking_pool(pool_options options = {});

    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;

    /// `stop()`, then `join()`; see the class notes.
    ~blocking_pool();

    executor_type get_executor() noexcept;

    void stop() noexcept;
    void join();
    bool join_for(std::chrono::steady_clock::duration timeout);

    /// Changes the thread limits while running. Grows at once to `min_threads`; surplus idle
    /// threads leave at once and busy ones when their call returns. Queued work all runs.
    void set_limits(std::size_t min_threads, std::size_t max_threads);

    /// A consistent snapshot of the pool's gauges, counters and latency distributions.
    pool_metrics metrics() const;

    /// @private
    detail::engine& core() const noexcept { return *core_; }

private:
    // Counted: the engine outlives this object while its threads or tracked work remain.
    detail::engine* core_;
};

/// A standard Asio executor submitting work to a `blocking_pool`.
/**
 * Supports, like `boost::asio::thread_pool::executor_type`: `execute`; `query` of `context`,
 * `blocking`, `relationship`, `outstanding_work`, `allocator`, `mapping` and `occupancy`;
 * `require`/`prefer` of the same; equality. In addition it carries `with_priority`,
 * `with_queue_timeout` and (when obtained from a `lane`) a lane, which apply to everything
 * submitted through it.
 *
 * `execute` with `blocking.possibly` runs the function inline when called on a pool thread (as
 * `thread_pool` does), unless the executor belongs to a lane. On a full queue it blocks the
 * calling thread until room frees (`overflow_policy::wait`; a pool thread is admitted over
 * capacity instead, so it never waits on itself) or throws `system_error(error::queue_full)`
 * (`overflow_policy::reject`). Once the pool is stopped, functions are destroyed without running.
 */
template <typename Allocator, unsigned int Bits>
class blocking_pool::basic_executor_type : detail::pool_executor_bits {
public:
    basic_executor_type(const basic_executor_type& other) noexcept
        : pool_(other.pool_)
        , core_(other.core_)
        , allocator_(other.allocator_)
        , bits_(other.bits_)
        , settings_(other.settings_)
    {
        if constexpr ((Bits & outstanding_work_tracked) != 0)
            if (pool_)
                work_started();
    }

    basic_executor_type(basic_executor_type&& other) noexcept
        : pool_(other.pool_)
        , core_(other.core_)
        , allocator_(std::move(other.allocator_))
        , bits_(other.bits_)
        , settings_(other.settings_)
    {
        if constexpr ((Bits & outstanding_work_tracked) != 0)
            other.pool_ = nullptr;
    }

    ~basic_executor_type()
    {
        if constexpr ((Bits & outstanding_work_tracked) != 0)
            if (pool_)
                work_finished();
    }

    basic_executor_type& operator=(const basic_executor_type& other) noexcept
    {
        if (this != &other) {
            basic_executor_type tmp(other);
            *this = std::move(tmp);
        }
        return *this;
    }

    basic_executor_type& operator=(basic_executor_type&& other) noexcept
    {
        if (this != &other) {
            if constexpr ((Bits & outstanding_work_tracked) != 0)
                if (pool_)
                    work_finished();
            pool_ = other.pool_;
            core_ = other.core_;
            allocator_ = std::move(other.allocator_);
            bits_ = other.bits_;
            settings_ = other.settings_;
            if constexpr ((Bits & outstanding_work_tracked) != 0)
                other.pool_ = nullptr;
        }
        return *this;
    }

    // require / prefer

    basic_executor_type<Allocator, Bits & ~blocking_always>
    require(boost::asio::execution::blocking_t::possibly_t) const
    {
        return {pool_, allocator_, bits_ & ~blocking_never, settings_};
    }

    basic_executor_type<Allocator, Bits | blocking_always> require(boost::asio::execution::blocking_t::always_t) const
    {
        return {pool_, allocator_, bits_ & ~blocking_never, settings_};
    }

    basic_executor_type<Allocator, Bits & ~blocking_always> require(boost::asio::execution::blocking_t::never_t) const
    {
        return {pool_, allocator_, bits_ | blocking_never, settings_};
    }

    basic_executor_type require(boost::asio::execution::relationship_t::fork_t) const
    {
        return {pool_, allocator_, bits_ & ~relationship_continuation, settings_};
    }

    basic_executor_type require(boost::asio::execution::relationship_t::continuation_t) const
    {
        return {pool_, allocator_, bits_ | relationship_continuation, settings_};
    }

    basic_executor_type<Allocator, Bits | outstanding_work_tracked>
    require(boost::asio::execution::outstanding_work_t::tracked_t) const
    {
        return {pool_, allocator_, bits_, settings_};
    }

    basic_executor_type<Allocator, Bits & ~outstanding_work_tracked>
    require(boost::asio::execution::outstanding_work_t::untracked_t) const
    {
        return {pool_, allocator_, bits_, settings_};
    }

    template <typename OtherAllocator>
    basic_executor_type<OtherAllocator, Bits> require(boost::asio::execution::allocator_t<OtherAllocator> a) const
    {
        return {pool_, a.value(), bits_, settings_};
    }

    basic_executor_type<std::allocator<void>, Bits> require(boost::asio::execution::allocator_t<void>) const
    {
        return {pool_, std::allocator<void>(), bits_, settings_};
    }

    basic_executor_type require(with_priority p) const
    {
        detail::call_settings s = settings_;
        s.prio = p.level;
        return {pool_, allocator_, bits_, s};
    }

    basic_executor_type require(with_queue_timeout t) const
    {
        detail::call_settings s = settings_;
        s.queue_timeout = t.duration;
        return {pool_, allocator_, bits_, s};
    }

    // query

    static constexpr boost::asio::execution::mapping_t query(boost::asio::execution::mapping_t) noexcept
    {
        return boost::asio::execution::mapping.thread;
    }

    blocking_pool& query(boost::asio::execution::context_t) const noexcept { return *pool_; }

    boost::asio::execution::blocking_t query(boost::asio::execution::blocking_t) const noexcept
    {
        if constexpr ((Bits & blocking_always) != 0)
            return boost::asio::execution::blocking.always;
        return (bits_ & blocking_never) ? boost::asio::execution::blocking_t(boost::asio::execution::blocking.never)
                                        : boost::asio::execution::blocking_t(boost::asio::execution::blocking.possibly);
    }

    boost::asio::execution::relationship_t query(boost::asio::execution::relationship_t) const noexcept
    {
        return (bits_ & relationship_continuation)
                   ? boost::asio::execution::relationship_t(boost::asio::execution::relationship.continuation)
                   : boost::asio::execution::relationship_t(boost::asio::execution::relationship.fork);
    }

    static constexpr boost::asio::execution::outstanding_work_t
    query(boost::asio::execution::outstanding_work_t) noexcept
    {
        return (Bits & outstanding_work_tracked)
                   ? boost::asio::execution::outstanding_work_t(boost::asio::execution::outstanding_work.tracked)
                   : boost::asio::execution::outstanding_work_t(boost::asio::execution::outstanding_work.untracked);
    }

    template <typename OtherAllocator>
    constexpr Allocator query(boost::asio::execution::allocator_t<OtherAllocator>) const noexcept
    {
        return allocator_;
    }

    constexpr Allocator query(boost::asio::execution::allocator_t<void>) const noexcept { return allocator_; }

    /// The number of threads alive now.
    std::size_t query(boost::asio::execution::occupancy_t) const noexcept;

    asio_blocking::priority query(with_priority) const noexcept { return settings_.prio; }

    std::chrono::steady_clock::duration query(with_queue_timeout) const noexcept { return settings_.queue_timeout; }

    /// True on one of the pool's worker threads.
    bool running_in_this_thread() const noexcept;

    friend bool operator==(const basic_executor_type& a, const basic_executor_type& b) noexcept
    {
        return a.core_ == b.core_ && a.allocator_ == b.allocator_ && a.bits_ == b.bits_ && a.settings_ == b.settings_;
    }

    friend bool operator!=(const basic_executor_type& a, const basic_executor_type& b) noexcept { return !(a == b); }

    /// Runs `f` on the pool; see the class notes.
    template <typename Function>
    void execute(Function&& f) const;

    /// @private The pool and per-call settings; used by async_blocking.
    detail::call_target target() const noexcept { return {pool_, settings_}; }

    /// @private
    detail::engine& core() const noexcept { return *core_; }

private:
    friend class blocking_pool;
    friend class lane;
    template <typename, unsigned int>
    friend class basic_executor_type;

    basic_executor_type(blocking_pool* p, const Allocator& a, unsigned int bits, detail::call_settings s) noexcept
        : pool_(p)
        , core_(&p->core())
        , allocator_(a)
        , bits_(bits)
        , settings_(s)
    {
        if constexpr ((Bits & outstanding_work_tracked) != 0)
            if (pool_)
                work_started();
    }

    void work_started() const noexcept;
    void work_finished() const noexcept;

    blocking_pool* pool_;
    // The engine, reached directly: it outlives the pool object while any of its threads still
    // runs a call (after join_for gave up), and such calls may still hold tracked executors.
    detail::engine* core_;
    Allocator allocator_;
    unsigned int bits_;
    detail::call_settings settings_;
};

} // namespace asio_blocking

#include <asio_blocking/impl/blocking_pool.hpp>

#endif
