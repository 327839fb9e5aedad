// Per-lane concurrency limits: admits a call or holds it in its lane; a released slot admits the next.
#ifndef ASIO_BLOCKING_SRC_ENGINE_LANE_GATE_HPP
#define ASIO_BLOCKING_SRC_ENGINE_LANE_GATE_HPP

#include <asio_blocking/detail/operation.hpp>
#include <asio_blocking/lane_metrics.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace asio_blocking::detail {

/// One lane's state; owned by its pool's gate, so calls never outlive it.
class lane_state {
public:
    lane_state(std::string name, std::size_t limit, std::uint16_t index)
        : name_(std::move(name))
        , limit_(limit)
        , index_(index)
    {
    }

private:
    friend class lane_gate;
    std::string name_;
    std::size_t limit_;
    const std::uint16_t index_; // what its calls keep in operation::lane_ (1-based; never changes)
    std::size_t admitted_ = 0;  // in the pool's queue or running
    std::size_t running_ = 0;
    std::size_t peak_running_ = 0;
    std::uint64_t completed_ = 0;
    op_list waiting_;
};

class lane_gate {
public:
    enum class verdict { admit, hold };

    /// Most lanes one pool can have: a call keeps its lane as a 16-bit index.
    static constexpr std::size_t max_lanes = std::numeric_limits<std::uint16_t>::max();

    /// A new lane; throws std::length_error beyond max_lanes.
    lane_state* add(std::string name, std::size_t limit)
    {
        if (lanes_.size() >= max_lanes)
            throw std::length_error("asio_blocking::lane: a pool has at most 65535 lanes");
        return &lanes_.emplace_back(std::move(name), limit, static_cast<std::uint16_t>(lanes_.size() + 1));
    }

    /// What a call on `lane` keeps in operation::lane_ (0 for no lane).
    static std::uint16_t index_of(const lane_state* lane) noexcept { return lane ? lane->index_ : 0; }

    /// The lane of `op`, which has one.
    lane_state& lane_of(const operation* op) noexcept { return lanes_[op->lane_ - 1]; }

    /// Admits `op` (it counts against its lane's limit from now on) or holds it in the lane.
    verdict admit(operation* op) noexcept
    {
        lane_state& l = lane_of(op);
        if (l.admitted_ >= l.limit_) {
            l.waiting_.push_back(op);
            op->place_ = op_place::lane;
            return verdict::hold;
        }
        ++l.admitted_;
        return verdict::admit;
    }

    /// `op`, admitted, has started on a worker.
    void started(const operation* op) noexcept
    {
        lane_state& l = lane_of(op);
        l.peak_running_ = std::max(l.peak_running_, ++l.running_);
    }

    /// `op` has finished running (`ran`: fn ran, rather than being skipped).
    void finished(const operation* op, bool ran) noexcept
    {
        lane_state& l = lane_of(op);
        --l.running_;
        if (ran)
            ++l.completed_;
    }

    /// Takes a held `op` out of its lane (cancelled, expired).
    void remove_held(operation* op) noexcept { lane_of(op).waiting_.erase(op); }

    /// Gives back the slot an admitted call held; returns the next held call it admits, if
    /// any (call again until nullptr: a raised limit may admit several).
    operation* release(lane_state* lane) noexcept
    {
        --lane->admitted_;
        return admit_next(lane);
    }

    /// Admits the next held call if the lane has room; nullptr if none.
    operation* admit_next(lane_state* lane) noexcept
    {
        if (lane->admitted_ >= lane->limit_ || lane->waiting_.empty())
            return nullptr;
        ++lane->admitted_;
        return lane->waiting_.pop_front();
    }

    void set_limit(lane_state* lane, std::size_t limit) noexcept { lane->limit_ = limit; }

    /// Moves every held call to `out`; admitted calls that are not running give back their slots.
    void take_all_held(op_list& out) noexcept
    {
        for (lane_state& l : lanes_) {
            out.splice_back(l.waiting_);
            l.admitted_ = l.running_;
        }
    }

    std::size_t held() const noexcept
    {
        std::size_t n = 0;
        for (const lane_state& l : lanes_)
            n += l.waiting_.size();
        return n;
    }

    static lane_metrics metrics(const lane_state* l)
    {
        return {l->name_, l->limit_, l->running_, l->admitted_, l->waiting_.size(), l->peak_running_, l->completed_};
    }

private:
    // Stable addresses (executors hold lane_state pointers) and O(1) lookup by index (calls
    // hold indices). Lanes live as long as their pool.
    std::deque<lane_state> lanes_;
};

} // namespace asio_blocking::detail

#endif
