// Per-lane concurrency limits: admits a call or holds it in its lane; a released slot admits the next.
#ifndef ASIO_BLOCKING_SRC_ENGINE_LANE_GATE_HPP
#define ASIO_BLOCKING_SRC_ENGINE_LANE_GATE_HPP

#include <asio_blocking/detail/operation.hpp>
#include <asio_blocking/lane_metrics.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <utility>

namespace asio_blocking::detail {

/// One lane's state; owned by its pool's gate, so calls never outlive it.
class lane_state {
public:
    lane_state(std::string name, std::size_t limit)
        : name_(std::move(name))
        , limit_(limit)
    {
    }

private:
    friend class lane_gate;
    std::string name_;
    std::size_t limit_;
    std::size_t admitted_ = 0; // in the pool's queue or running
    std::size_t running_ = 0;
    std::size_t peak_running_ = 0;
    std::uint64_t completed_ = 0;
    op_list waiting_;
};

class lane_gate {
public:
    enum class verdict { admit, hold };

    lane_state* add(std::string name, std::size_t limit) { return &lanes_.emplace_back(std::move(name), limit); }

    /// Admits `op` (it counts against its lane's limit from now on) or holds it in the lane.
    verdict admit(operation* op) noexcept
    {
        lane_state& l = *op->lane_;
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
        lane_state& l = *op->lane_;
        l.peak_running_ = std::max(l.peak_running_, ++l.running_);
    }

    /// `op` has finished running (`ran`: fn ran, rather than being skipped).
    void finished(const operation* op, bool ran) noexcept
    {
        lane_state& l = *op->lane_;
        --l.running_;
        if (ran)
            ++l.completed_;
    }

    /// Takes a held `op` out of its lane (cancelled, expired).
    void remove_held(operation* op) noexcept { op->lane_->waiting_.erase(op); }

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
    std::list<lane_state> lanes_; // stable addresses: executors hold lane_state pointers
};

} // namespace asio_blocking::detail

#endif
