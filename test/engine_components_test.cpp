// The engine's pure components, tested without threads: priority queue, submission inbox, call
// timer (with a fake clock), lane gate, deadline set, growth policy (with synthetic snapshots),
// the idle spin's rationing and the batches a worker holds.
#include "engine/call_timer.hpp"
#include "engine/deadline_set.hpp"
#include "engine/growth_policy.hpp"
#include "engine/held_batches.hpp"
#include "engine/idle_spin.hpp"
#include "engine/lane_gate.hpp"
#include "engine/priority_queue.hpp"
#include "engine/submission_inbox.hpp"

#include <boost/test/unit_test.hpp>

#include <array>
#include <chrono>
#include <vector>

namespace ab = asio_blocking;
namespace d = asio_blocking::detail;
using namespace std::chrono_literals;

namespace {

struct test_op final : d::operation {
    explicit test_op(ab::priority p = ab::priority::normal) { priority_ = p; }
    outcome run() noexcept override { return outcome::returned; }
    d::caller_pending complete() noexcept override { return d::caller_pending::others_or_unknown; }
    void abort(std::exception_ptr) noexcept override {}
};

std::vector<d::operation*> drain(d::priority_queue& q)
{
    std::vector<d::operation*> order;
    while (d::operation* op = q.pop())
        order.push_back(op);
    return order;
}

/// A pool of 4 workers, all busy, 10 calls queued, room to grow: what tests vary from.
d::growth_snapshot busy_pool()
{
    d::growth_snapshot s;
    s.queued = 10;
    s.threads = 4;
    s.busy = 4;
    s.max_threads = 64;
    return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(engine_components_test)

// ---------------------------------------------------------------------------------------------
// priority_queue

BOOST_AUTO_TEST_CASE(priority_queue_starts_higher_levels_first_and_fifo_within_a_level)
{
    test_op low1(ab::priority::low), normal1, high1(ab::priority::high), normal2, high2(ab::priority::high);
    d::priority_queue q;
    for (d::operation* op : {(d::operation*)&low1, (d::operation*)&normal1, (d::operation*)&high1,
                             (d::operation*)&normal2, (d::operation*)&high2})
        q.push(op);
    BOOST_TEST(q.size() == 5u);
    BOOST_TEST(q.size(ab::priority::normal) == 2u);
    const std::vector<d::operation*> expected{&high1, &high2, &normal1, &normal2, &low1};
    BOOST_TEST(drain(q) == expected);
    BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(priority_queue_ages_a_passed_over_level_to_the_front)
{
    std::array<test_op, 20> highs;
    for (auto& h : highs)
        h.priority_ = ab::priority::high;
    test_op low(ab::priority::low);
    d::priority_queue q;
    q.push(&low);
    for (auto& h : highs)
        q.push(&h);
    const auto order = drain(q);
    // Passed over priority_ageing_limit times, the low call goes next.
    BOOST_TEST(order.at(ab::priority_ageing_limit) == &low);
}

BOOST_AUTO_TEST_CASE(priority_queue_removes_from_anywhere_and_takes_all)
{
    test_op a, b(ab::priority::high), c;
    d::priority_queue q;
    q.push(&a);
    q.push(&b);
    q.push(&c);
    q.remove(&a);
    BOOST_TEST(q.size() == 2u);
    d::op_list all;
    q.take_all(all);
    BOOST_TEST(q.empty());
    BOOST_TEST(all.size() == 2u);
    BOOST_TEST(all.front() == &b); // highest level first
}

// ---------------------------------------------------------------------------------------------
// submission_inbox

BOOST_AUTO_TEST_CASE(submission_inbox_hands_over_every_call_oldest_first_in_batches)
{
    std::array<test_op, 5> ops;
    d::submission_inbox inbox;
    BOOST_TEST(inbox.empty());
    for (std::size_t i = 0; i < 3; ++i)
        BOOST_TEST(inbox.push(&ops[i]));
    BOOST_TEST(!inbox.empty());
    d::op_list out;
    BOOST_TEST(inbox.take_all(out) == 3u);
    BOOST_TEST(inbox.empty());
    BOOST_TEST(inbox.take_all(out) == 0u);
    for (std::size_t i = 3; i < 5; ++i)
        BOOST_TEST(inbox.push(&ops[i]));
    BOOST_TEST(inbox.take_all(out) == 2u);
    BOOST_TEST(out.size() == 5u);
    for (test_op& op : ops)
        BOOST_TEST(out.pop_front() == &op);
}

BOOST_AUTO_TEST_CASE(submission_inbox_once_closed_hands_over_what_it_held_and_refuses_the_rest)
{
    test_op a, b, c;
    d::submission_inbox inbox;
    BOOST_TEST(inbox.push(&a));
    BOOST_TEST(inbox.push(&b));
    d::op_list out;
    BOOST_TEST(inbox.close(out) == 2u);
    BOOST_TEST(out.pop_front() == &a);
    BOOST_TEST(out.pop_front() == &b);
    BOOST_TEST(!inbox.push(&c));
    BOOST_TEST(inbox.empty());
    BOOST_TEST(inbox.take_all(out) == 0u); // taking does not reopen it
    BOOST_TEST(inbox.close(out) == 0u);
    BOOST_TEST(!inbox.push(&c));
    BOOST_TEST(out.empty());
}

// ---------------------------------------------------------------------------------------------
// call_timer

namespace {

/// A clock the test moves by hand, counting its readings.
struct fake_clock {
    d::call_timer::clock::time_point now{};
    int readings = 0;
    d::call_timer::clock::time_point operator()()
    {
        ++readings;
        return now;
    }
};

/// Runs `n` calls of `each` on `timer`; returns how many were timed.
int run(d::call_timer& timer, fake_clock& clock, int n, std::chrono::microseconds each)
{
    int timed = 0;
    for (int i = 0; i < n; ++i) {
        clock.now += each;
        if (timer.call_ended(std::ref(clock)))
            ++timed;
    }
    return timed;
}

} // namespace

BOOST_AUTO_TEST_CASE(call_timer_times_every_call_until_calls_prove_tiny_then_one_in_sampling)
{
    fake_clock clock;
    d::call_timer timer(clock.now, 50us);
    BOOST_TEST(run(timer, clock, d::call_timer::tiny_calls_to_sample, 1us) == int(d::call_timer::tiny_calls_to_sample));
    clock.readings = 0;
    const int n = 100 * d::call_timer::sampling;
    BOOST_TEST(run(timer, clock, n, 1us) == 100);
    BOOST_TEST(clock.readings == 200); // one reading starts each timed call, one ends it
    BOOST_TEST((timer.last_reading() <= clock.now));
    BOOST_TEST((clock.now - timer.last_reading() < d::call_timer::sampling * 1us));
}

BOOST_AUTO_TEST_CASE(call_timer_times_a_timed_call_exactly)
{
    fake_clock clock;
    d::call_timer timer(clock.now, 50us);
    clock.now += 7us;
    const auto ran = timer.call_ended(std::ref(clock));
    BOOST_TEST_REQUIRE(ran.has_value());
    BOOST_TEST((*ran == 7us));
}

BOOST_AUTO_TEST_CASE(call_timer_times_every_call_again_once_a_window_ran_long)
{
    fake_clock clock;
    d::call_timer timer(clock.now, 50us);
    run(timer, clock, d::call_timer::tiny_calls_to_sample + 1, 1us); // sampling now
    // One untimed call blocks: the window that holds it ends within `sampling` calls.
    clock.now += 10ms;
    BOOST_TEST(run(timer, clock, d::call_timer::sampling, 1us) >= 1);
    BOOST_TEST(run(timer, clock, 10, 1us) == 10); // every call timed again
    // A slow timed call keeps it so.
    BOOST_TEST(run(timer, clock, 1, 100us) == 1);
    BOOST_TEST(run(timer, clock, d::call_timer::tiny_calls_to_sample - 1, 1us) ==
               int(d::call_timer::tiny_calls_to_sample - 1));
}

BOOST_AUTO_TEST_CASE(call_timer_knows_the_time_per_call_of_its_last_window)
{
    fake_clock clock;
    d::call_timer timer(clock.now, 50us);
    BOOST_TEST((timer.per_call() == 0us)); // not known yet
    run(timer, clock, d::call_timer::tiny_calls_to_sample + 2 * d::call_timer::sampling, 2us);
    BOOST_TEST((timer.per_call() == 2us));
    // A worker that idled restarts the window: the idle time is not counted, nor are the calls
    // before it divided into the time after it.
    run(timer, clock, 3, 2us);
    clock.now += 1s;
    timer.restart(clock.now);
    run(timer, clock, 2 * d::call_timer::sampling, 3us);
    BOOST_TEST((timer.per_call() == 3us));
}

// ---------------------------------------------------------------------------------------------
// lane_gate

BOOST_AUTO_TEST_CASE(lane_gate_admits_up_to_its_limit_then_holds_in_fifo_order)
{
    d::lane_gate gate;
    d::lane_state* lane = gate.add("db", 2);
    std::array<test_op, 4> ops;
    for (auto& op : ops)
        op.lane_ = d::lane_gate::index_of(lane);
    BOOST_TEST((gate.admit(&ops[0]) == d::lane_gate::verdict::admit));
    BOOST_TEST((gate.admit(&ops[1]) == d::lane_gate::verdict::admit));
    BOOST_TEST((gate.admit(&ops[2]) == d::lane_gate::verdict::hold));
    BOOST_TEST((gate.admit(&ops[3]) == d::lane_gate::verdict::hold));
    BOOST_TEST(gate.held() == 2u);
    BOOST_TEST(d::lane_gate::metrics(lane).admitted == 2u);

    // A released slot admits the oldest held call, and only one.
    BOOST_TEST(gate.release(lane) == &ops[2]);
    BOOST_TEST(gate.admit_next(lane) == nullptr);
    BOOST_TEST(d::lane_gate::metrics(lane).admitted == 2u);
    BOOST_TEST(gate.held() == 1u);
}

BOOST_AUTO_TEST_CASE(lane_gate_raised_limit_admits_several_and_counts_running)
{
    d::lane_gate gate;
    d::lane_state* lane = gate.add("fs", 1);
    std::array<test_op, 3> ops;
    for (auto& op : ops)
        op.lane_ = d::lane_gate::index_of(lane);
    for (auto& op : ops)
        (void)gate.admit(&op);
    gate.started(&ops[0]);
    gate.set_limit(lane, 3);
    BOOST_TEST(gate.admit_next(lane) == &ops[1]);
    BOOST_TEST(gate.admit_next(lane) == &ops[2]);
    BOOST_TEST(gate.admit_next(lane) == nullptr);
    gate.finished(&ops[0], true);
    const auto m = d::lane_gate::metrics(lane);
    BOOST_TEST(m.running == 0u);
    BOOST_TEST(m.peak_running == 1u);
    BOOST_TEST(m.completed == 1u);
}

// ---------------------------------------------------------------------------------------------
// deadline_set

BOOST_AUTO_TEST_CASE(deadline_set_yields_expired_calls_in_deadline_order)
{
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    test_op a, b, c;
    d::deadline_set set;
    set.add(&a, t0 + 30ms);
    set.add(&b, t0 + 10ms);
    set.add(&c, t0 + 20ms);
    BOOST_TEST((set.earliest() == t0 + 10ms));
    set.remove(&c);
    BOOST_TEST(!c.has_deadline_);
    BOOST_TEST(set.pop_expired(t0 + 5ms) == nullptr);
    BOOST_TEST(set.pop_expired(t0 + 40ms) == &b);
    BOOST_TEST(set.pop_expired(t0 + 40ms) == &a);
    BOOST_TEST(set.pop_expired(t0 + 40ms) == nullptr);
    BOOST_TEST(set.empty());
    BOOST_TEST((set.earliest() == std::chrono::steady_clock::time_point::max()));
}

BOOST_AUTO_TEST_CASE(deadline_arithmetic_saturates)
{
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    BOOST_TEST((d::saturating_after(now, clock::duration::max()) == clock::time_point::max()));
    BOOST_TEST((d::saturating_after(now, clock::duration::max() - 1ns) == clock::time_point::max()));
    BOOST_TEST((d::saturating_after(now, clock::duration::zero()) == now));
    BOOST_TEST((d::saturating_after(now, -5s) == now));
    BOOST_TEST((d::saturating_after(now, 5s) == now + 5s));
}

// ---------------------------------------------------------------------------------------------
// growth policy

BOOST_AUTO_TEST_CASE(a_backlog_of_tiny_calls_holds_and_asks_to_look_again_before_a_stall)
{
    d::growth_snapshot s = busy_pool();
    s.finished_calls = 1000;
    s.slow_share = 0;
    s.oldest_running = 2ms; // a tiny call descheduled for a while
    const auto decision = d::decide_growth(s);
    BOOST_TEST(decision.start == 0u);
    BOOST_TEST((decision.recheck_after <= d::growth_policy::stall));
}

BOOST_AUTO_TEST_CASE(one_preempted_tiny_call_does_not_make_calls_look_blocking)
{
    unsigned share = 0;
    std::uint64_t finished = 0;
    for (int i = 0; i < 100; ++i)
        share = d::growth_policy::next_slow_share(share, finished++, 200ns);
    share = d::growth_policy::next_slow_share(share, finished++, 5ms); // preempted once
    BOOST_TEST(share < d::growth_policy::slow_majority);
    d::growth_snapshot s = busy_pool();
    s.finished_calls = finished;
    s.slow_share = share;
    BOOST_TEST(d::decide_growth(s).start == 0u);
}

BOOST_AUTO_TEST_CASE(a_backlog_of_blocking_calls_grows_and_a_new_worker_starts_two)
{
    d::growth_snapshot s = busy_pool();
    s.finished_calls = 50;
    s.slow_share = 256;
    BOOST_TEST(d::decide_growth(s).start == 1u);
    s.asker = d::growth_asker::worker;
    BOOST_TEST(d::decide_growth(s).start == 2u); // a tree, not a chain
    // While a thread starts, further submissions wait for it; new workers extend the tree.
    s.starting = 1;
    BOOST_TEST(d::decide_growth(s).start == 2u);
    s.asker = d::growth_asker::submitter;
    BOOST_TEST(d::decide_growth(s).start == 0u);
}

BOOST_AUTO_TEST_CASE(a_cold_backlog_grows_once_the_oldest_call_has_run_long_enough)
{
    d::growth_snapshot s = busy_pool();
    s.threads = s.busy = 1;
    s.oldest_running = 10us;
    auto decision = d::decide_growth(s);
    BOOST_TEST(decision.start == 0u);
    BOOST_TEST((decision.recheck_after <= d::growth_policy::slow_call));
    s.oldest_running = d::growth_policy::slow_call;
    s.oldest_activity = d::thread_activity::sleeping;
    BOOST_TEST(d::decide_growth(s).start == 1u);
}

BOOST_AUTO_TEST_CASE(a_long_call_whose_thread_is_runnable_is_preempted_not_stalled)
{
    // A loaded machine: a tiny call's thread waits for a CPU for 15 ms. Another thread would
    // only contend for the same CPUs.
    d::growth_snapshot s = busy_pool();
    s.finished_calls = 1000;
    s.oldest_running = 15ms;
    s.oldest_activity = d::thread_activity::runnable;
    s.asker = d::growth_asker::monitor;
    auto decision = d::decide_growth(s);
    BOOST_TEST(decision.start == 0u);
    BOOST_TEST((decision.recheck_after == d::growth_policy::activity_poll)); // and looks again
    // Submissions and workers cannot tell (unknown): they leave it to the monitor, at once.
    s.oldest_activity = d::thread_activity::unknown;
    s.asker = d::growth_asker::submitter;
    decision = d::decide_growth(s);
    BOOST_TEST(decision.start == 0u);
    BOOST_TEST((decision.recheck_after < 1ms));
    // The same before any call finished.
    s.finished_calls = 0;
    s.oldest_activity = d::thread_activity::runnable;
    BOOST_TEST(d::decide_growth(s).start == 0u);
}

BOOST_AUTO_TEST_CASE(a_stalled_tiny_call_grows_one_thread_at_a_time)
{
    d::growth_snapshot s = busy_pool();
    s.finished_calls = 1000;
    s.oldest_running = d::growth_policy::stall;
    s.oldest_activity = d::thread_activity::sleeping;
    s.asker = d::growth_asker::worker;
    BOOST_TEST(d::decide_growth(s).start == 1u);
    s.starting = 1;
    BOOST_TEST(d::decide_growth(s).start == 0u);
}

BOOST_AUTO_TEST_CASE(a_failed_thread_start_backs_off_then_growth_resumes)
{
    d::growth_snapshot s = busy_pool();
    s.finished_calls = 50;
    s.slow_share = 256;
    s.start_failures = 1;
    s.since_start_failure = 1ms;
    const auto decision = d::decide_growth(s);
    BOOST_TEST(decision.start == 0u);
    BOOST_TEST((decision.recheck_after == d::growth_policy::start_failure_backoff - 1ms));
    s.since_start_failure = d::growth_policy::start_failure_backoff;
    BOOST_TEST(d::decide_growth(s).start == 1u);
}

BOOST_AUTO_TEST_CASE(growth_respects_the_thread_limits)
{
    d::growth_snapshot s = busy_pool();
    s.finished_calls = 50;
    s.slow_share = 256;
    s.asker = d::growth_asker::worker;
    s.max_threads = 5;
    BOOST_TEST(d::decide_growth(s).start == 1u); // room for one, though a worker may start two
    s.max_threads = 4;
    BOOST_TEST(d::decide_growth(s).start == 0u);
    s.max_threads = 64;
    s.starting = d::growth_policy::concurrent_starts;
    BOOST_TEST(d::decide_growth(s).start == 0u);

    d::growth_snapshot idle;
    idle.min_threads = 3;
    idle.max_threads = 8;
    BOOST_TEST(d::decide_growth(idle).start == 3u); // up to min_threads, with or without work
}

BOOST_AUTO_TEST_CASE(no_growth_while_a_worker_is_free_or_starting_threads_cover_the_backlog)
{
    d::growth_snapshot s = busy_pool();
    s.finished_calls = 50;
    s.slow_share = 256;
    s.busy = 3;
    BOOST_TEST(d::decide_growth(s).start == 0u);
    s.busy = 4;
    s.queued = 2;
    s.starting = 2;
    BOOST_TEST(d::decide_growth(s).start == 0u);
    d::growth_snapshot none;
    none.queued = 1;
    BOOST_TEST(d::decide_growth(none).start == 1u); // no thread at all: always one
}

// ---------------------------------------------------------------------------------------------
// idle_spin

BOOST_AUTO_TEST_CASE(idle_spin_needs_two_cpus_per_spinner_across_pools)
{
    std::atomic<unsigned> spinners{0};
    d::idle_spin one_cpu(1, spinners);
    BOOST_TEST(!one_cpu.try_begin_locked()); // the caller needs the only CPU

    d::idle_spin pool_a(2, spinners), pool_b(2, spinners);
    BOOST_TEST(pool_a.try_begin_locked());
    BOOST_TEST(!pool_b.try_begin_locked()); // one spinner per two CPUs, whichever pool
    pool_a.end_locked(true);
    BOOST_TEST(pool_b.try_begin_locked());
    pool_b.end_locked(true);
    BOOST_TEST(spinners.load() == 0u);

    d::idle_spin four_cpus(4, spinners), other(4, spinners);
    BOOST_TEST(four_cpus.try_begin_locked());
    BOOST_TEST(other.try_begin_locked());
    BOOST_TEST(!four_cpus.try_begin_locked());
}

BOOST_AUTO_TEST_CASE(idle_spin_skips_1_2_4_to_64_chances_after_fruitless_spins_and_resets_on_a_find)
{
    std::atomic<unsigned> spinners{0};
    d::idle_spin spin(2, spinners);
    // After each fruitless spin, the chances refused before the next spin.
    std::vector<unsigned> skipped;
    BOOST_TEST_REQUIRE(spin.try_begin_locked());
    for (int round = 0; round < 9; ++round) {
        spin.end_locked(false);
        unsigned refused = 0;
        while (!spin.try_begin_locked())
            BOOST_TEST_REQUIRE(++refused <= d::idle_spin::max_skip);
        skipped.push_back(refused);
    }
    const std::vector<unsigned> expected{1, 2, 4, 8, 16, 32, 64, 64, 64};
    BOOST_TEST(skipped == expected, boost::test_tools::per_element());
    spin.end_locked(true); // found work: every chance again
    BOOST_TEST(spin.try_begin_locked());
    spin.end_locked(false);
    BOOST_TEST(!spin.try_begin_locked()); // and the back-off starts over at 1
    BOOST_TEST(spin.try_begin_locked());
    spin.end_locked(true);
}

BOOST_AUTO_TEST_CASE(idle_spin_poll_sees_a_poke_at_once_and_gives_up_after_its_limit)
{
    std::atomic<bool> poked{true};
    BOOST_TEST(d::idle_spin::poll(poked));
    poked = false;
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST(!d::idle_spin::poll(poked));
    BOOST_TEST((std::chrono::steady_clock::now() - start >= d::idle_spin::limit));
}

// ---------------------------------------------------------------------------------------------
// held_batches

BOOST_AUTO_TEST_CASE(held_batches_wait_for_fewer_deliveries_the_longer_calls_take)
{
    using hb = d::held_batches;
    BOOST_TEST(hb::deliveries_for(0us) == 0u); // not known yet: post at once
    BOOST_TEST(hb::deliveries_for(100ns) == hb::max_deliveries);
    BOOST_TEST(hb::deliveries_for(hb::hold_budget / 10) == 10u);
    BOOST_TEST(hb::deliveries_for(hb::hold_budget / 2) == 2u);
    BOOST_TEST(hb::deliveries_for(hb::hold_budget / 2 + 1ns) == 0u);
    BOOST_TEST(hb::deliveries_for(1s) == 0u);
}

BOOST_AUTO_TEST_CASE(held_batches_come_due_after_their_limit_of_deliveries_oldest_first)
{
    d::held_batches held;
    const std::atomic<unsigned> looks{0}; // the monitor's: it does not look here
    // Registries are only carried, never touched: any distinct addresses do.
    std::array<int, 3> r{};
    auto* a = reinterpret_cast<d::caller_registry*>(&r[0]);
    auto* b = reinterpret_cast<d::caller_registry*>(&r[1]);
    BOOST_TEST(!held.any());
    BOOST_TEST(held.hold(a, looks));
    held.delivered();
    held.delivered();
    BOOST_TEST(held.hold(b, looks));
    BOOST_TEST(held.any());
    BOOST_TEST(held.take_due(3) == nullptr);
    held.delivered();
    BOOST_TEST(held.take_due(3) == a);
    BOOST_TEST(held.take_due(3) == nullptr);
    held.delivered();
    held.delivered();
    BOOST_TEST(held.take_due(3) == b);
    BOOST_TEST(!held.any());
}

BOOST_AUTO_TEST_CASE(held_batches_are_all_due_at_limit_zero_and_refuse_beyond_their_slots)
{
    d::held_batches held;
    const std::atomic<unsigned> looks{0};
    std::array<int, d::held_batches::slots + 1> r{};
    for (std::size_t i = 0; i < d::held_batches::slots; ++i)
        BOOST_TEST(held.hold(reinterpret_cast<d::caller_registry*>(&r[i]), looks));
    BOOST_TEST(!held.hold(reinterpret_cast<d::caller_registry*>(&r.back()), looks)); // posted at once instead
    std::size_t taken = 0;
    while (held.take_due(0))
        ++taken;
    BOOST_TEST(taken == d::held_batches::slots);
    BOOST_TEST(held.take_any() == nullptr);
}

BOOST_AUTO_TEST_CASE(held_batches_are_taken_once_by_the_worker_or_the_monitor)
{
    d::held_batches held;
    const std::atomic<unsigned> looks{0};
    std::array<int, 2> r{};
    auto* a = reinterpret_cast<d::caller_registry*>(&r[0]);
    auto* b = reinterpret_cast<d::caller_registry*>(&r[1]);
    held.hold(a, looks);
    held.hold(b, looks);
    // The monitor takes one; the worker, finding it gone, takes only the other.
    d::caller_registry* first = held.take_any();
    BOOST_TEST((first == a || first == b));
    d::caller_registry* second = held.take_due(0);
    BOOST_TEST((second != nullptr && second != first));
    BOOST_TEST(held.take_any() == nullptr);
    BOOST_TEST(held.take_due(0) == nullptr);
}

BOOST_AUTO_TEST_CASE(held_batches_refuse_a_hold_once_the_monitor_has_looked_since_the_call_started)
{
    d::held_batches held;
    std::atomic<unsigned> looks{0};
    std::array<int, 2> r{};
    auto* a = reinterpret_cast<d::caller_registry*>(&r[0]);
    auto* b = reinterpret_cast<d::caller_registry*>(&r[1]);
    held.call_started(looks);
    BOOST_TEST(held.hold(a, looks));  // before the look: the monitor sees it
    ++looks;                          // the monitor looks, and may not come back during this call
    BOOST_TEST(!held.hold(b, looks)); // posted at once instead
    BOOST_TEST(held.take_any() == a);
    BOOST_TEST(held.take_any() == nullptr);
    held.call_started(looks); // the next call may hold again
    BOOST_TEST(held.hold(b, looks));
}

BOOST_AUTO_TEST_SUITE_END()
