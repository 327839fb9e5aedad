// Calls waiting for a worker: one FIFO per priority level, with ageing so no level starves.
#ifndef ASIO_BLOCKING_SRC_ENGINE_PRIORITY_QUEUE_HPP
#define ASIO_BLOCKING_SRC_ENGINE_PRIORITY_QUEUE_HPP

#include <asio_blocking/detail/operation.hpp>
#include <asio_blocking/priority.hpp>

#include <array>
#include <cstddef>

namespace asio_blocking::detail {

class priority_queue {
public:
    static constexpr unsigned levels = static_cast<unsigned>(priority::high) + 1;

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    std::size_t size(priority p) const noexcept { return queues_[index(p)].size(); }

    void push(operation* op) noexcept
    {
        queues_[index(op->priority_)].push_back(op);
        ++size_;
    }

    /// The next call to start: the highest level, unless a lower one has been passed over
    /// `priority_ageing_limit` times (then its oldest call goes first). nullptr if empty.
    operation* pop() noexcept
    {
        if (size_ == 0)
            return nullptr;
        // The usual case: every waiting call is at normal priority, so nothing is passed over.
        if (op_list& normal = queues_[index(priority::normal)]; normal.size() == size_) {
            passed_over_[index(priority::normal)] = 0;
            --size_;
            return normal.pop_front();
        }
        unsigned chosen = levels;
        for (unsigned p = 0; p < levels && chosen == levels; ++p)
            if (!queues_[p].empty() && passed_over_[p] >= priority_ageing_limit)
                chosen = p;
        for (unsigned p = levels; p-- > 0 && chosen == levels;)
            if (!queues_[p].empty())
                chosen = p;
        for (unsigned p = 0; p < chosen; ++p)
            if (!queues_[p].empty())
                ++passed_over_[p];
        passed_over_[chosen] = 0;
        --size_;
        return queues_[chosen].pop_front();
    }

    /// Takes out `op`, which must be queued here.
    void remove(operation* op) noexcept
    {
        queues_[index(op->priority_)].erase(op);
        --size_;
    }

    /// Moves every queued call to `out`, highest level first.
    void take_all(op_list& out) noexcept
    {
        for (unsigned p = levels; p-- > 0;)
            out.splice_back(queues_[p]);
        size_ = 0;
        passed_over_ = {};
    }

private:
    static unsigned index(priority p) noexcept { return static_cast<unsigned>(p); }

    std::array<op_list, levels> queues_;
    std::array<unsigned, levels> passed_over_{}; // ageing counters
    std::size_t size_ = 0;
};

} // namespace asio_blocking::detail

#endif
