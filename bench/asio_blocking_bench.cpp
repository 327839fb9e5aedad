// asio_blocking_bench: async_blocking measured against what users would pick instead, side by
// side in one process: hand-rolled asio::thread_pool, a thread per call, std::async. Reports the
// median, min and max of several repetitions and ratios to the scenario's first contender (the
// baseline), since absolute times on a shared 2-core machine drift from run to run.
#include "../example/common/detached_threads.hpp"
#include "../example/common/loop_lag_probe.hpp"

#include <asio_blocking.hpp>
#include <asio_blocking/detail/latency_histogram.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <malloc.h>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <sys/resource.h>
#include <thread>
#include <time.h>
#include <vector>

namespace asio = boost::asio;
namespace po = boost::program_options;
namespace ab = asio_blocking;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------------------------------------
// Process measurements

long rss_bytes()
{
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6)) * 1024;
    return 0;
}

/// Heap bytes in use (glibc): exact, unlike RSS, which keeps earlier freed memory resident.
long heap_bytes()
{
    return static_cast<long>(mallinfo2().uordblks);
}

double cpu_seconds()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// Context switches (wake-ups) of every thread of the process whose name starts with `prefix`.
long context_switches(const std::string& prefix)
{
    long total = 0;
    DIR* dir = opendir("/proc/self/task");
    if (!dir)
        return 0;
    while (dirent* e = readdir(dir)) {
        if (e->d_name[0] == '.')
            continue;
        const std::string base = std::string("/proc/self/task/") + e->d_name;
        std::ifstream comm(base + "/comm");
        std::string name;
        std::getline(comm, name);
        if (name.rfind(prefix, 0) != 0)
            continue;
        std::ifstream status(base + "/status");
        for (std::string line; std::getline(status, line);)
            if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
                total += std::stol(line.substr(line.find(':') + 1));
    }
    closedir(dir);
    return total;
}

/// Samples RSS on a thread while alive; reports the peak.
class rss_sampler {
public:
    rss_sampler()
        : base_(rss_bytes())
        , peak_(base_)
        , thread_([this] {
            while (!stop_) {
                peak_ = std::max(peak_.load(), rss_bytes());
                std::this_thread::sleep_for(2ms);
            }
        })
    {
    }
    ~rss_sampler() { finish(); }
    long finish()
    {
        if (thread_.joinable()) {
            stop_ = true;
            thread_.join();
            peak_ = std::max(peak_.load(), rss_bytes());
        }
        return peak_ - base_;
    }

private:
    long base_;
    std::atomic<long> peak_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// The contenders: each submits `job` and, once it ran, runs `done` on the io_context.

int tiny_job() noexcept
{
    static std::atomic<int> sink{0};
    return sink.fetch_add(1, std::memory_order_relaxed);
}

struct harness;

/// Runs on the io_context once a call completed: 16 bytes, as small as a real callback.
struct done_token {
    harness* h;
    clock_type::time_point issued;
    void operator()() const;
};

struct harness {
    asio::io_context& io;
    std::function<void(std::function<void()>, done_token)> submit;
    std::function<void()> job;
    long total = 0, issued = 0, done = 0, window = 0;
    std::vector<double> latencies_us;
    bool record_latency = false;

    void issue_more()
    {
        while (issued < total && (window == 0 || issued - done < window)) {
            ++issued;
            submit(job, done_token{this, record_latency ? clock_type::now() : clock_type::time_point{}});
        }
    }
};

void done_token::operator()() const
{
    if (h->record_latency)
        h->latencies_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - issued).count());
    ++h->done;
    h->issue_more();
}

/// Owns the thread pool (or nothing) for one repetition. Declared after the io_context, so it
/// is destroyed first: its destructor waits for thread-per-call threads, which would otherwise
/// still be releasing their work on the io_context as it is destroyed.
struct runner {
    std::unique_ptr<ab::blocking_pool> pool;
    std::unique_ptr<asio::thread_pool> tp;
    std::vector<std::future<void>> futures;
    example::detached_threads threads; // thread per call

    std::size_t threads_started() const { return pool ? pool->metrics().threads_started : 0; }

    ~runner() { threads.wait_all(); }
};

using submit_fn = std::function<void(std::function<void()>, done_token)>;

submit_fn make_submit(const std::string& kind, std::size_t k, asio::io_context& io, runner& r,
                      const ab::pool_options& opts)
{
    auto io_ex = io.get_executor();
    if (kind == "async_blocking") {
        r.pool = std::make_unique<ab::blocking_pool>(opts);
        ab::blocking_pool* pool = r.pool.get();
        return [pool, io_ex](std::function<void()> job, done_token done) {
            ab::async_blocking(*pool, io_ex, std::move(job), [done](std::exception_ptr) { done(); });
        };
    }
    if (kind == "thread_pool") {
        r.tp = std::make_unique<asio::thread_pool>(k);
        asio::thread_pool* tp = r.tp.get();
        return [tp, io_ex](std::function<void()> job, done_token done) {
            // The natural hand-rolled answer: run on the pool, post the completion back, keeping
            // work on the io_context meanwhile (else run() may return before it arrives).
            asio::post(
                *tp, [job = std::move(job), done, ex = asio::prefer(io_ex, asio::execution::outstanding_work.tracked)] {
                    job();
                    asio::post(ex, done);
                });
        };
    }
    if (kind == "thread_per_call") {
        runner* rp = &r;
        return [rp, io_ex](std::function<void()> job, done_token done) {
            auto work = asio::make_work_guard(io_ex);
            rp->threads.started();
            std::thread([rp, job = std::move(job), done, work = std::move(work), io_ex]() mutable {
                job();
                asio::post(io_ex, done);
                work.reset(); // the loop may return from run() now: touch it no more
                rp->threads.finished();
            }).detach();
        };
    }
    // std::async
    runner* rp = &r;
    return [rp, io_ex](std::function<void()> job, done_token done) {
        auto work = asio::make_work_guard(io_ex);
        rp->futures.push_back(
            std::async(std::launch::async, [job = std::move(job), done, work = std::move(work), io_ex]() mutable {
                job();
                asio::post(io_ex, done);
                work.reset();
            }));
    };
}

// ---------------------------------------------------------------------------------------------
// Results

struct figures {
    std::map<std::string, std::vector<double>> values; // metric -> one value per repetition
};

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double percentile(std::vector<double> v, double q)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * (v.size() - 1))];
}

struct scenario_result {
    std::string scenario, primary, unit;
    bool higher_is_better;
    std::vector<std::pair<std::string, figures>> contenders; // first one is the baseline
};

void print(const scenario_result& r)
{
    std::cout << "\n== " << r.scenario << "  (" << r.primary << ", " << r.unit << "; "
              << (r.higher_is_better ? "higher" : "lower") << " is better; ratio vs " << r.contenders.front().first
              << ")\n";
    const double base = median(r.contenders.front().second.values.at(r.primary));
    std::cout << std::left << std::setw(26) << "contender" << std::right << std::setw(14) << "median" << std::setw(14)
              << "min" << std::setw(14) << "max" << std::setw(9) << "ratio"
              << "   other (medians)\n";
    for (const auto& [name, f] : r.contenders) {
        const auto& v = f.values.at(r.primary);
        const double m = median(v);
        std::cout << std::left << std::setw(26) << name << std::right << std::fixed << std::setprecision(2)
                  << std::setw(14) << m << std::setw(14) << *std::min_element(v.begin(), v.end()) << std::setw(14)
                  << *std::max_element(v.begin(), v.end()) << std::setw(8) << (base != 0 ? m / base : 0) << "x  ";
        for (const auto& [metric, values] : f.values)
            if (metric != r.primary)
                std::cout << ' ' << metric << '=' << std::setprecision(metric.find("us") != std::string::npos ? 1 : 0)
                          << median(values);
        std::cout << '\n';
    }
}

std::string to_json(const std::vector<scenario_result>& results, const std::string& machine)
{
    std::ostringstream js;
    js << std::setprecision(10) << "{\"machine\":\"" << machine << "\",\"scenarios\":[";
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        js << (i ? "," : "") << "{\"name\":\"" << r.scenario << "\",\"primary\":\"" << r.primary << "\",\"unit\":\""
           << r.unit << "\",\"higher_is_better\":" << (r.higher_is_better ? "true" : "false") << ",\"baseline\":\""
           << r.contenders.front().first << "\",\"contenders\":[";
        const double base = median(r.contenders.front().second.values.at(r.primary));
        for (std::size_t c = 0; c < r.contenders.size(); ++c) {
            const auto& [name, f] = r.contenders[c];
            const auto& v = f.values.at(r.primary);
            js << (c ? "," : "") << "{\"name\":\"" << name << "\",\"median\":" << median(v)
               << ",\"min\":" << *std::min_element(v.begin(), v.end())
               << ",\"max\":" << *std::max_element(v.begin(), v.end())
               << ",\"ratio\":" << (base != 0 ? median(v) / base : 0) << ",\"metrics\":{";
            bool first = true;
            for (const auto& [metric, values] : f.values) {
                js << (first ? "" : ",") << '"' << metric << "\":[";
                for (std::size_t k = 0; k < values.size(); ++k)
                    js << (k ? "," : "") << values[k];
                js << ']';
                first = false;
            }
            js << "}}";
        }
        js << "]}";
    }
    js << "]}\n";
    return js.str();
}

// ---------------------------------------------------------------------------------------------
// Scenarios

struct config {
    int reps = 5;
    bool smoke = false;
    long scale(long full, long smoke_n) const { return smoke ? smoke_n : full; }
};

struct contender_spec {
    std::string label, kind;
    std::size_t k = 0;
    long cap = 0; // most calls this contender is given (thread per call, std::async)
};

/// Runs `total` calls with at most `window` in flight; returns calls/s, threads started and
/// latencies if asked.
figures run_calls(const contender_spec& c, const config& cfg, long total, long window, bool latency,
                  const ab::pool_options& opts = {})
{
    figures f;
    for (int rep = 0; rep < cfg.reps; ++rep) {
        asio::io_context io;
        runner r;
        harness h{io, make_submit(c.kind, c.k, io, r, opts), [] {
                      tiny_job();
                  }};
        h.total = c.cap ? std::min(total, c.cap) : total;
        h.window = window;
        h.record_latency = latency;
        if (latency)
            h.latencies_us.reserve(static_cast<std::size_t>(h.total));
        const auto start = clock_type::now();
        asio::post(io, [&] { h.issue_more(); });
        io.run();
        const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
        f.values["calls_per_s"].push_back(h.done / secs);
        f.values["threads_started"].push_back(c.kind == "async_blocking" ? double(r.threads_started())
                                              : c.kind == "thread_pool"  ? double(c.k)
                                                                         : double(h.total));
        if (latency) {
            f.values["p50_us"].push_back(percentile(h.latencies_us, 0.5));
            f.values["p99_us"].push_back(percentile(h.latencies_us, 0.99));
        }
    }
    return f;
}

scenario_result tiny_throughput(const config& cfg, long window)
{
    const long n = cfg.scale(1'000'000, 20'000);
    const long cap = cfg.scale(20'000, 2'000);
    scenario_result r{"tiny-throughput W=" + (window ? std::to_string(window) : std::string("unbounded")),
                      "calls_per_s",
                      "calls/s",
                      true,
                      {}};
    for (const contender_spec& c :
         {contender_spec{"thread_pool(1)", "thread_pool", 1}, contender_spec{"thread_pool(2)", "thread_pool", 2},
          contender_spec{"thread_pool(512)", "thread_pool", 512}, contender_spec{"async_blocking", "async_blocking"},
          contender_spec{"thread_per_call", "thread_per_call", 0, cap},
          contender_spec{"std::async", "std_async", 0, cap}})
        r.contenders.emplace_back(c.label, run_calls(c, cfg, n, window, false));
    return r;
}

scenario_result tiny_latency(const config& cfg)
{
    const long n = cfg.scale(50'000, 2'000);
    const long cap = cfg.scale(5'000, 500);
    scenario_result r{"tiny-latency W=1", "p50_us", "us", false, {}};
    for (const contender_spec& c :
         {contender_spec{"thread_pool(1)", "thread_pool", 1}, contender_spec{"async_blocking", "async_blocking"},
          contender_spec{"thread_per_call", "thread_per_call", 0, cap},
          contender_spec{"std::async", "std_async", 0, cap}})
        r.contenders.emplace_back(c.label, run_calls(c, cfg, n, 1, true));
    return r;
}

scenario_result burst_sleep(const config& cfg)
{
    const long n = cfg.scale(10'000, 1'000);
    const auto nap = cfg.smoke ? 2ms : 10ms;
    const double ideal_ms = std::ceil(n / 512.0) * std::chrono::duration<double, std::milli>(nap).count();
    scenario_result r{"burst-sleep " + std::to_string(n) + " x " + std::to_string(nap.count()) + "ms (ideal " +
                          std::to_string(int(ideal_ms)) + " ms)",
                      "wall_ms",
                      "ms",
                      false,
                      {}};
    for (const contender_spec& c : {contender_spec{"thread_pool(512) warm", "thread_pool", 512},
                                    contender_spec{"async_blocking cold", "async_blocking"},
                                    contender_spec{"thread_per_call", "thread_per_call", 0, cfg.scale(2'000, 200)}}) {
        figures f;
        for (int rep = 0; rep < cfg.reps; ++rep) {
            asio::io_context io;
            runner r2;
            harness h{io, make_submit(c.kind, c.k, io, r2, {.max_threads = 512}), [nap] {
                          std::this_thread::sleep_for(nap);
                      }};
            h.total = c.cap ? std::min(n, c.cap) : n;
            if (c.kind == "thread_pool") // prestart: post a no-op to every thread first
                for (int i = 0; i < 512; ++i)
                    asio::post(*r2.tp, [] {});
            rss_sampler rss;
            const auto start = clock_type::now();
            asio::post(io, [&] { h.issue_more(); });
            io.run();
            const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
            const double scaled_ideal =
                std::ceil(h.total / 512.0) * std::chrono::duration<double, std::milli>(nap).count();
            f.values["wall_ms"].push_back(ms);
            f.values["x_ideal"].push_back(ms / scaled_ideal);
            f.values["peak_rss_kib"].push_back(rss.finish() / 1024.0);
            f.values["peak_threads"].push_back(r2.pool                   ? double(r2.pool->metrics().peak_threads)
                                               : c.kind == "thread_pool" ? 512.0
                                                                         : double(h.total));
        }
        r.contenders.emplace_back(c.label, std::move(f));
    }
    return r;
}

scenario_result queued_memory(const config& cfg)
{
    const long n = cfg.scale(1'000'000, 50'000);
    scenario_result r{
        "queued-memory " + std::to_string(n) + " calls behind one busy worker", "bytes_per_call", "B", false, {}};
    struct callback16 { // a 16-byte callback, as the goal states
        long* done;
        long pad;
        void operator()(std::exception_ptr) const { ++*done; }
    };
    for (const std::string kind : {"thread_pool", "async_blocking"}) {
        figures f;
        for (int rep = 0; rep < cfg.reps; ++rep) {
            asio::io_context io;
            std::promise<void> release;
            std::shared_future<void> gate = release.get_future().share();
            long done = 0;
            std::unique_ptr<ab::blocking_pool> pool;
            std::unique_ptr<asio::thread_pool> tp;
            const long before = heap_bytes();
            if (kind == "async_blocking") {
                pool = std::make_unique<ab::blocking_pool>(ab::pool_options{.max_threads = 1});
                ab::async_blocking(
                    *pool, io.get_executor(), [gate] { gate.wait(); }, callback16{&done, 0});
                for (long i = 0; i < n; ++i) // a 16-byte fn
                    ab::async_blocking(
                        *pool, io.get_executor(),
                        [a = i, b = i] {
                            (void)a;
                            (void)b;
                        },
                        callback16{&done, 0});
            } else {
                tp = std::make_unique<asio::thread_pool>(1);
                auto io_ex = io.get_executor();
                auto work = std::make_shared<decltype(asio::make_work_guard(io))>(asio::make_work_guard(io));
                asio::post(*tp, [gate] { gate.wait(); });
                for (long i = 0; i < n; ++i)
                    asio::post(*tp, [a = i, io_ex, cb = callback16{&done, 0}] {
                        (void)a;
                        asio::post(io_ex, [cb] { cb(nullptr); });
                    });
                asio::post(*tp, [work]() mutable { work->reset(); });
            }
            const long after = heap_bytes();
            f.values["bytes_per_call"].push_back(double(after - before) / n);
            release.set_value();
            io.run();
            if (tp)
                tp->join();
        }
        r.contenders.emplace_back(kind == "async_blocking" ? "async_blocking" : "thread_pool(1)", std::move(f));
    }
    return r;
}

/// One of several submitters sharing a pool: keeps `window` tiny calls in flight from its
/// io_context until `total` are done. Completions may run on any of the context's threads.
struct concurrent_submitter {
    concurrent_submitter(asio::io_context& c, std::function<void(concurrent_submitter&)> f)
        : io(c)
        , submit_one(std::move(f))
    {
    }
    asio::io_context& io;
    std::function<void(concurrent_submitter&)> submit_one;
    long total = 0, window = 0;
    std::atomic<long> issued{0}, done{0};

    void issue_more()
    {
        for (long i = issued.load(std::memory_order_relaxed); i < total && i - done.load() < window;) {
            if (issued.compare_exchange_weak(i, i + 1))
                submit_one(*this);
        }
    }
    void finished()
    {
        done.fetch_add(1);
        issue_more();
    }
};

/// Aggregate calls/s of `submitters` submitters: on one io_context run by that many threads
/// (`shared_context`), or each on its own io_context run by one thread.
figures run_submitters(const contender_spec& c, const config& cfg, long per_submitter, long window,
                       std::size_t submitters, bool shared_context)
{
    figures f;
    for (int rep = 0; rep < cfg.reps; ++rep) {
        std::vector<std::unique_ptr<asio::io_context>> contexts;
        for (std::size_t i = 0; i < (shared_context ? 1 : submitters); ++i)
            contexts.push_back(std::make_unique<asio::io_context>());
        std::unique_ptr<ab::blocking_pool> pool;
        std::unique_ptr<asio::thread_pool> tp;
        if (c.kind == "async_blocking")
            pool = std::make_unique<ab::blocking_pool>();
        else
            tp = std::make_unique<asio::thread_pool>(c.k);
        std::vector<std::unique_ptr<concurrent_submitter>> subs;
        for (std::size_t i = 0; i < submitters; ++i) {
            asio::io_context& io = *contexts[shared_context ? 0 : i];
            std::function<void(concurrent_submitter&)> submit_one;
            if (pool) {
                submit_one = [p = pool.get(), ex = io.get_executor()](concurrent_submitter& s) {
                    ab::async_blocking(*p, ex, tiny_job, [&s](std::exception_ptr, int) { s.finished(); });
                };
            } else {
                submit_one = [t = tp.get(), ex = io.get_executor()](concurrent_submitter& s) {
                    asio::post(*t, [&s, ex = asio::prefer(ex, asio::execution::outstanding_work.tracked)] {
                        tiny_job();
                        asio::post(ex, [&s] { s.finished(); });
                    });
                };
            }
            subs.push_back(std::make_unique<concurrent_submitter>(io, std::move(submit_one)));
            subs.back()->total = per_submitter;
            subs.back()->window = window;
        }
        const auto start = clock_type::now();
        for (auto& sub : subs)
            asio::post(sub->io, [s = sub.get()] { s->issue_more(); });
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < submitters; ++i)
            threads.emplace_back([&io = *contexts[shared_context ? 0 : i]] { io.run(); });
        for (auto& t : threads)
            t.join();
        const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
        long done = 0;
        for (auto& sub : subs)
            done += sub->done.load();
        f.values["calls_per_s"].push_back(done / secs);
        f.values["threads_started"].push_back(pool ? double(pool->metrics().threads_started) : double(c.k));
    }
    return f;
}

scenario_result multi_submitter(const config& cfg, bool shared_context)
{
    const long per_submitter = cfg.scale(250'000, 5'000);
    const std::size_t submitters = 4;
    scenario_result r{std::string("multi-submitter ") +
                          (shared_context ? "1 io_context x 4 threads" : "4 io_contexts x 1 thread") + ", W=256 each",
                      "calls_per_s",
                      "calls/s",
                      true,
                      {}};
    for (const contender_spec& c :
         {contender_spec{"thread_pool(1)", "thread_pool", 1}, contender_spec{"thread_pool(2)", "thread_pool", 2},
          contender_spec{"thread_pool(4)", "thread_pool", 4}, contender_spec{"async_blocking", "async_blocking"}})
        r.contenders.emplace_back(c.label, run_submitters(c, cfg, per_submitter, 256, submitters, shared_context));
    // The same calls from a single submitter: adding submitters must not collapse the rate.
    r.contenders.emplace_back("async_blocking 1 submitter", run_submitters({"async_blocking", "async_blocking"}, cfg,
                                                                           per_submitter * 4, 256, 1, shared_context));
    return r;
}

std::uint64_t burn_cpu(std::chrono::microseconds how_long)
{
    const auto until = clock_type::now() + how_long;
    std::uint64_t h = 1469598103934665603ull;
    while (clock_type::now() < until)
        for (int i = 0; i < 256; ++i)
            h = (h ^ static_cast<unsigned>(i)) * 1099511628211ull;
    return h;
}

scenario_result loop_lag(const config& cfg)
{
    const long n = cfg.scale(2'000, 200);
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    scenario_result r{"loop-lag " + std::to_string(n) +
                          " CPU-bound 1 ms calls, 1 ms timer (async_blocking: default options, or max_threads = " +
                          std::to_string(cores) + " and the worker_scheduling named)",
                      "lag_p99_us",
                      "us",
                      false,
                      {}};
    struct contender {
        std::string label;
        bool on_pool;
        ab::pool_options options;
    };
    const std::vector<contender> contenders = {
        {"inline", false, {}},
        {"async_blocking defaults", true, {}},
        {"async_blocking cores normal", true, {.max_threads = cores, .worker_scheduling = ab::os_scheduling::normal}},
        {"async_blocking cores low", true, {.max_threads = cores, .worker_scheduling = ab::os_scheduling::low}},
        {"async_blocking cores idle", true, {.max_threads = cores, .worker_scheduling = ab::os_scheduling::idle}},
    };
    for (const contender& c : contenders) {
        figures f;
        for (int rep = 0; rep < cfg.reps; ++rep) {
            asio::io_context io;
            ab::blocking_pool pool(c.options);
            example::loop_lag_probe probe(io, 1ms);
            probe.start();
            long done = 0;
            // Calls arrive one per 0.5 ms, as requests would.
            asio::steady_timer arrivals(io);
            long issued = 0;
            const auto start = clock_type::now();
            std::function<void()> arrive = [&] {
                const long due = std::min<long>(n, (clock_type::now() - start) / 500us + 1);
                for (; issued < due; ++issued) {
                    auto finish = [&] {
                        if (++done == n)
                            probe.stop();
                    };
                    if (!c.on_pool) {
                        burn_cpu(1ms);
                        finish();
                    } else {
                        ab::async_blocking(
                            pool, io.get_executor(), [] { return burn_cpu(1ms); },
                            [finish](std::exception_ptr, std::uint64_t) { finish(); });
                    }
                }
                if (issued < n) {
                    arrivals.expires_after(500us);
                    arrivals.async_wait([&](auto ec) {
                        if (!ec)
                            arrive();
                    });
                }
            };
            asio::post(io, arrive);
            io.run();
            const auto& lags = probe.lags_us();
            f.values["lag_p50_us"].push_back(percentile(lags, 0.5));
            f.values["lag_p99_us"].push_back(percentile(lags, 0.99));
            f.values["lag_max_us"].push_back(percentile(lags, 1.0));
            if (c.on_pool)
                f.values["peak_threads"].push_back(double(pool.metrics().peak_threads));
        }
        r.contenders.emplace_back(c.label, std::move(f));
    }
    return r;
}

/// Burns `how_much` of this thread's CPU time: a fixed amount of work however often the thread
/// is preempted (burn_cpu's wall-clock burn does less work on an oversubscribed machine).
std::uint64_t burn_thread_cpu(std::chrono::microseconds how_much)
{
    auto used = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    };
    const auto until = used() + how_much;
    std::uint64_t h = 1469598103934665603ull;
    while (used() < until)
        for (int i = 0; i < 4096; ++i)
            h = (h ^ static_cast<unsigned>(i)) * 1099511628211ull;
    return h;
}

scenario_result cpu_backlog(const config& cfg)
{
    const long n = cfg.scale(2'000, 200);
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    scenario_result r{"cpu-backlog " + std::to_string(n) +
                          " x 2 ms CPU-bound calls submitted at once (async_blocking: default options)",
                      "wall_ms",
                      "ms",
                      false,
                      {}};
    for (const contender_spec& c : {contender_spec{"thread_pool(" + std::to_string(cores) + ")", "thread_pool", cores},
                                    contender_spec{"async_blocking defaults", "async_blocking"}}) {
        figures f;
        for (int rep = 0; rep < cfg.reps; ++rep) {
            asio::io_context io;
            runner run;
            harness h{io, make_submit(c.kind, c.k, io, run, {}), [] {
                          burn_thread_cpu(2ms);
                      }};
            h.total = n;
            const auto start = clock_type::now();
            asio::post(io, [&] { h.issue_more(); });
            io.run();
            f.values["wall_ms"].push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
            f.values["peak_threads"].push_back(run.pool ? double(run.pool->metrics().peak_threads) : double(c.k));
        }
        r.contenders.emplace_back(c.label, std::move(f));
    }
    return r;
}

/// Threads alive at once, and the most there were: for contenders that start threads per call.
struct thread_census {
    std::atomic<long> alive{0}, peak{0};
    void started()
    {
        const long now = ++alive;
        long seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
    }
    void finished() { --alive; }
};

scenario_result mixed(const config& cfg)
{
    // 40 clients each send a request, wait for its answer and send the next: a load that keeps
    // ~40 calls sleeping when the CPU keeps up. Each request is a sleep-like 5 ms call (a database
    // round trip) followed by a 1 ms CPU-bound call (hashing the reply).
    const long clients = 40;
    const long n = cfg.scale(2'000, 200);
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    scenario_result r{"mixed " + std::to_string(n) + " requests of (5 ms sleep, then 1 ms CPU) from " +
                          std::to_string(clients) + " closed-loop clients, 1 ms timer",
                      "requests_per_s",
                      "req/s",
                      true,
                      {}};
    using call_fn = std::function<void(std::function<void()> job, std::function<void()> done)>;
    const std::string cores_text = std::to_string(cores);
    const std::vector<std::string> labels = {"async_blocking defaults", "two pools cpu=" + cores_text + " io=64",
                                             "thread_pool(" + cores_text + ")", "thread_pool(64)", "thread_per_call"};
    for (const std::string& label : labels) {
        figures f;
        for (int rep = 0; rep < cfg.reps; ++rep) {
            asio::io_context io;
            auto io_ex = io.get_executor();
            std::unique_ptr<ab::blocking_pool> pool, cpu_pool;
            std::unique_ptr<asio::thread_pool> tp;
            thread_census census;
            example::detached_threads detached;
            auto on_blocking_pool = [io_ex](ab::blocking_pool& p) -> call_fn {
                return [&p, io_ex](std::function<void()> job, std::function<void()> done) {
                    ab::async_blocking(p, io_ex, std::move(job), [done](std::exception_ptr) { done(); });
                };
            };
            call_fn sleep_call, cpu_call;
            if (label == "async_blocking defaults") {
                pool = std::make_unique<ab::blocking_pool>();
                sleep_call = cpu_call = on_blocking_pool(*pool);
            } else if (label.rfind("two pools", 0) == 0) {
                pool = std::make_unique<ab::blocking_pool>(ab::pool_options{.max_threads = 64});
                cpu_pool = std::make_unique<ab::blocking_pool>(ab::pool_options{.max_threads = cores});
                sleep_call = on_blocking_pool(*pool);
                cpu_call = on_blocking_pool(*cpu_pool);
            } else if (label.rfind("thread_pool", 0) == 0) {
                tp = std::make_unique<asio::thread_pool>(label == "thread_pool(64)" ? 64 : cores);
                sleep_call = cpu_call = [&tp, io_ex](std::function<void()> job, std::function<void()> done) {
                    asio::post(*tp, [job = std::move(job), done = std::move(done),
                                     ex = asio::prefer(io_ex, asio::execution::outstanding_work.tracked)] {
                        job();
                        asio::post(ex, done);
                    });
                };
            } else { // a thread per call: at most `clients` alive, since each client waits for its answer
                sleep_call =
                    cpu_call = [&census, &detached, io_ex](std::function<void()> job, std::function<void()> done) {
                        detached.started();
                        census.started();
                        std::thread([&census, &detached, job = std::move(job), done = std::move(done),
                                     work = asio::make_work_guard(io_ex), io_ex]() mutable {
                            job();
                            asio::post(io_ex, std::move(done));
                            work.reset();
                            census.finished();
                            detached.finished();
                        }).detach();
                    };
            }
            example::loop_lag_probe probe(io, 1ms);
            probe.start();
            long issued = 0, done = 0;
            std::function<void()> send = [&] {
                if (issued == n)
                    return;
                ++issued;
                sleep_call([] { std::this_thread::sleep_for(5ms); },
                           [&] {
                               cpu_call([] { burn_thread_cpu(1ms); },
                                        [&] {
                                            if (++done == n)
                                                probe.stop();
                                            send();
                                        });
                           });
            };
            const auto start = clock_type::now();
            for (long c = 0; c < clients; ++c)
                asio::post(io, send);
            io.run();
            const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
            detached.wait_all();
            const auto& lags = probe.lags_us();
            f.values["requests_per_s"].push_back(done / secs);
            f.values["lag_p99_us"].push_back(percentile(lags, 0.99));
            f.values["lag_max_us"].push_back(percentile(lags, 1.0));
            f.values["peak_threads"].push_back(
                pool ? double(pool->metrics().peak_threads + (cpu_pool ? cpu_pool->metrics().peak_threads : 0))
                : tp ? (label == "thread_pool(64)" ? 64.0 : double(cores))
                     : double(census.peak.load()));
        }
        r.contenders.emplace_back(label, std::move(f));
    }
    return r;
}

scenario_result idle_cost(const config& cfg)
{
    const auto idle_for = cfg.smoke ? 1s : 5s;
    const auto idle_timeout = cfg.smoke ? 300ms : 1s;
    scenario_result r{"idle-cost after a burst, " +
                          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(idle_for).count()) +
                          " s idle, idle_timeout " +
                          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(idle_timeout).count()) +
                          " ms",
                      "wakeups_beyond_expiries",
                      "wake-ups",
                      false,
                      {}};
    figures f;
    for (int rep = 0; rep < std::min(cfg.reps, 3); ++rep) {
        ab::blocking_pool pool(
            {.min_threads = 2, .max_threads = 32, .idle_timeout = idle_timeout, .thread_name = "idlebench"});
        {
            std::vector<std::future<void>> calls;
            for (int i = 0; i < 64; ++i)
                calls.push_back(ab::async_blocking(
                    pool.get_executor(), [] { std::this_thread::sleep_for(20ms); }, asio::use_future));
            for (auto& c : calls)
                c.get();
        }
        const auto burst_end = clock_type::now();
        const auto threads_after_burst = pool.metrics().threads;
        // Time to fall back to min_threads.
        while (pool.metrics().threads > 2 && clock_type::now() - burst_end < 30s)
            std::this_thread::sleep_for(1ms);
        const double shrink_ms = std::chrono::duration<double, std::milli>(clock_type::now() - burst_end).count();
        // Then idle: count wake-ups of the pool's threads and CPU time.
        const long switches_before = context_switches("idlebench");
        const double cpu_before = cpu_seconds();
        std::this_thread::sleep_for(idle_for);
        const double cpu = cpu_seconds() - cpu_before;
        const long switches = context_switches("idlebench") - switches_before;
        // The min_threads workers each wake once per idle_timeout to re-arm their wait.
        const double expiries = 2.0 * (std::chrono::duration<double>(idle_for) / idle_timeout);
        f.values["wakeups_beyond_expiries"].push_back(std::max(0.0, switches - expiries));
        f.values["wakeups_total"].push_back(double(switches));
        f.values["idle_cpu_ms"].push_back(cpu * 1000);
        f.values["shrink_ms"].push_back(shrink_ms);
        f.values["shrink_x_idle_timeout"].push_back(shrink_ms /
                                                    std::chrono::duration<double, std::milli>(idle_timeout).count());
        f.values["threads_after_burst"].push_back(double(threads_after_burst));
    }
    r.contenders.emplace_back("async_blocking", std::move(f));
    return r;
}

scenario_result metrics_overhead(const config& cfg)
{
    // Metrics cannot be switched off: they are recorded inside critical sections the pool takes
    // anyway. So measure what recording adds per tiny call and compare it with the per-call cost
    // of tiny-throughput. One call in 16 has its queue wait measured (a clock read on submission)
    // and one in 16 its run time (a reading before and after it); the others share readings.
    // All three readings are counted here, though the growth policy needs the run-time ones.
    constexpr long sampling = 16;
    const long n = cfg.scale(2'000'000, 100'000);
    scenario_result r{"metrics-overhead per call", "ns_per_call", "ns", false, {}};
    figures rec, whole;
    for (int rep = 0; rep < cfg.reps; ++rep) {
        ab::detail::latency_histogram wait, run;
        const auto start = clock_type::now();
        std::uint64_t prev = 0;
        for (long i = 0; i < n; ++i) {
            if (i % sampling != 0)
                continue;
            const auto submitted = static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count());
            wait.record(submitted - prev);
            const auto began = static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count());
            const auto ended = static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count());
            run.record(ended - began);
            prev = submitted;
        }
        rec.values["ns_per_call"].push_back(
            std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / n);
    }
    const figures tiny = run_calls({"async_blocking", "async_blocking"}, cfg, cfg.scale(500'000, 20'000), 1024, false);
    for (double cps : tiny.values.at("calls_per_s"))
        whole.values["ns_per_call"].push_back(1e9 / cps);
    const double share = median(rec.values["ns_per_call"]) / median(whole.values["ns_per_call"]) * 100;
    rec.values["percent_of_call"].push_back(share);
    r.contenders.emplace_back("whole async_blocking call (W=1024)", std::move(whole));
    r.contenders.emplace_back("metrics recording alone", std::move(rec));
    return r;
}

scenario_result loop_overhead(const config& cfg)
{
    // What watching a loop costs it: tiny posted handlers (64 in flight, each posting the
    // next) on one thread, with and without a stall_detector at its default 50 ms threshold.
    // Repetitions alternate so that drift on a shared machine hits both alike.
    const long n = cfg.scale(20'000'000, 100'000);
    scenario_result r{
        "loop-overhead, " + std::to_string(n) + " posted tiny handlers", "handlers_per_s", "handlers/s", true, {}};
    figures bare, watched;
    // glibc takes mutexes without atomic instructions while a process has only ever had one
    // thread; the detector's thread ends that (callgrind: +1.8% instructions on the loop, all
    // in pthread_mutex_unlock). Every real user of this library has a pool thread already, so
    // make the process multi-threaded for both contenders.
    std::thread([] {}).join();
    auto run_once = [&](bool watch) {
        asio::io_context io(1);
        // A loop with no timer or socket has no reactor and never calls epoll_wait; the
        // detector's timer would start one (callgrind: one epoll_wait per 64 handlers, 1.1%).
        // Real loops have one, so both contenders get it.
        asio::steady_timer reactor_in_use(io);
        std::optional<ab::stall_detector> detector;
        if (watch)
            detector.emplace(io);
        // Let the detector's thread start and the process's symbolizing thread load the debug
        // information (once, ~200 ms of CPU) before measuring; the same pause without one.
        std::this_thread::sleep_for(cfg.smoke ? 50ms : 500ms);
        long remaining = n;
        struct step {
            asio::io_context* io;
            long* remaining;
            void operator()() const
            {
                if (--*remaining >= 64)
                    asio::post(*io, *this);
            }
        };
        const auto start = clock_type::now();
        for (int i = 0; i < 64; ++i)
            asio::post(io, step{&io, &remaining});
        io.run();
        const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
        (watch ? watched : bare).values["handlers_per_s"].push_back(double(n) / secs);
    };
    for (int rep = 0; rep < cfg.reps; ++rep) {
        run_once(false);
        run_once(true);
    }
    const double difference =
        (median(bare.values["handlers_per_s"]) / median(watched.values["handlers_per_s"]) - 1) * 100;
    watched.values["percent_slower"].push_back(difference);
    r.contenders.emplace_back("no detector", std::move(bare));
    r.contenders.emplace_back("stall_detector 50ms", std::move(watched));
    return r;
}

scenario_result busy_machine(const config& cfg)
{
    // What a lower scheduling class costs the blocking calls themselves: while other threads
    // (here `cores` normal-class spinners, as another busy process in the same cgroup would be)
    // keep every core busy, a call that sleeps 1 ms and then computes 50 us needs the CPU briefly
    // after each wake-up. SCHED_IDLE workers get it only when a core falls idle.
    const long n = cfg.scale(100, 20);
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    scenario_result r{"busy-machine " + std::to_string(n) + " sequential calls of (1 ms sleep, 50 us CPU) while " +
                          std::to_string(cores) + " normal threads spin (async_blocking: max_threads = 1)",
                      "wall_ms",
                      "ms",
                      false,
                      {}};
    for (const auto& [label, scheduling] :
         {std::pair{"normal", ab::os_scheduling::normal}, std::pair{"low", ab::os_scheduling::low},
          std::pair{"idle", ab::os_scheduling::idle}}) {
        figures f;
        for (int rep = 0; rep < cfg.reps; ++rep) {
            std::atomic<bool> stop{false};
            std::vector<std::thread> spinners;
            for (std::size_t i = 0; i < cores; ++i)
                spinners.emplace_back([&stop] {
                    while (!stop.load(std::memory_order_relaxed))
                        burn_cpu(100us);
                });
            ab::blocking_pool pool({.max_threads = 1, .worker_scheduling = scheduling});
            const auto start = clock_type::now();
            for (long i = 0; i < n; ++i)
                ab::async_blocking(
                    pool.get_executor(),
                    [] {
                        std::this_thread::sleep_for(1ms);
                        burn_thread_cpu(50us);
                    },
                    asio::use_future)
                    .get();
            const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
            stop = true;
            for (auto& t : spinners)
                t.join();
            f.values["wall_ms"].push_back(ms);
            f.values["x_ideal"].push_back(ms / (n * 1.05));
        }
        r.contenders.emplace_back(std::string("async_blocking ") + label, std::move(f));
    }
    return r;
}

// ---------------------------------------------------------------------------------------------
// Soak: minutes of thread churn, cancellation storms and set_limits storms, sampling the
// process's footprint once a second. The lines must stay flat: virtual memory and memory maps
// that keep growing (threads never reclaimed) or a call completed twice or never fail the run.

long vm_size_kib()
{
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmSize:", 0) == 0)
            return std::stol(line.substr(7));
    return 0;
}

long map_count()
{
    std::ifstream maps("/proc/self/maps");
    long n = 0;
    for (std::string line; std::getline(maps, line);)
        ++n;
    return n;
}

long live_threads()
{
    long n = 0;
    if (DIR* dir = opendir("/proc/self/task")) {
        while (dirent* e = readdir(dir))
            n += e->d_name[0] != '.';
        closedir(dir);
    }
    return n;
}

/// How often each call completed: every submitted call must complete exactly once.
class completion_ledger {
public:
    std::size_t submit()
    {
        std::lock_guard lk(mutex_);
        times_completed_.push_back(0);
        return times_completed_.size() - 1;
    }

    void complete(std::size_t id)
    {
        std::lock_guard lk(mutex_);
        const auto n = ++times_completed_[id];
        if (n == 1)
            ++completed_;
        else if (n == 2)
            ++doubled_;
    }

    struct tally {
        std::size_t submitted, completed, doubled;
        std::size_t outstanding() const { return submitted - completed; }
    };

    tally count() const
    {
        std::lock_guard lk(mutex_);
        return {times_completed_.size(), completed_, doubled_};
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::uint8_t> times_completed_; // saturates at 255: only 0, 1 and "more" matter
    std::size_t completed_ = 0, doubled_ = 0;
};

/// Sleeps a few hundred microseconds: long enough to count as blocking, short enough to churn.
void short_nap(std::uint32_t r)
{
    std::this_thread::sleep_for(std::chrono::microseconds(r % 800));
}

scenario_result soak(const config& cfg, std::chrono::seconds duration, std::vector<std::string>& failures)
{
    using namespace asio::experimental::awaitable_operators;
    const auto sample_every = cfg.smoke ? 500ms : 1s;
    constexpr std::size_t max_threads = 16; // with the driver threads, well under 64 in all
    constexpr int loops = 4;                // concurrent loops of each storm
    scenario_result r{"soak " + std::to_string(duration.count()) +
                          " s: thread churn, cancellation and set_limits storms (flat lines expected)",
                      "maps",
                      "maps",
                      false,
                      {}};
    completion_ledger ledger;
    std::atomic<bool> stopping{false};
    figures f;
    asio::io_context io;
    ab::blocking_pool pool({.min_threads = 0,
                            .max_threads = max_threads,
                            .idle_timeout = 200us, // every pause retires workers: maximal churn
                            .thread_name = "soak"});
    auto ex = io.get_executor();

    // Cancellation storm 1: async_blocking || timer, the timer winning about half the time.
    for (int i = 0; i < loops; ++i)
        asio::co_spawn(
            io,
            [&, seed = std::uint32_t(i)]() -> asio::awaitable<void> {
                std::mt19937 rng(seed);
                asio::steady_timer timer(ex);
                while (!stopping) {
                    const auto id = ledger.submit();
                    timer.expires_after(std::chrono::microseconds(rng() % 800));
                    try {
                        co_await (ab::async_blocking(
                                      pool, ex, [r = rng()] { short_nap(r); }, asio::use_awaitable) ||
                                  timer.async_wait(asio::use_awaitable));
                    } catch (const std::exception&) {
                        // both failed: still one completion
                    }
                    ledger.complete(id);
                }
            },
            asio::detached);

    // Cancellation storm 2: a cancellation signal emitted at a random moment, of a random type.
    struct emitter {
        explicit emitter(asio::io_context& io)
            : timer(io)
        {
        }
        asio::cancellation_signal signal;
        asio::steady_timer timer;
    };
    std::function<void(std::uint32_t)> emit_loop = [&](std::uint32_t seed) {
        if (stopping)
            return;
        std::mt19937 rng(seed);
        auto e = std::make_shared<emitter>(io);
        const auto id = ledger.submit();
        ab::async_blocking(
            pool, ex, [r = rng()] { short_nap(r); },
            asio::bind_cancellation_slot(e->signal.slot(), [&, e, id, next = rng()](std::exception_ptr) {
                ledger.complete(id);
                emit_loop(next);
            }));
        static constexpr asio::cancellation_type types[] = {
            asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total};
        e->timer.expires_after(std::chrono::microseconds(rng() % 800));
        e->timer.async_wait([e, type = types[rng() % 3]](boost::system::error_code) { e->signal.emit(type); });
    };
    for (int i = 0; i < loops; ++i)
        asio::post(io, [&, i] { emit_loop(100 + i); });

    // Thread churn: bursts that grow the pool, with pauses long enough for it to shrink back.
    asio::steady_timer bursts(io);
    std::function<void(std::uint32_t)> burst = [&](std::uint32_t seed) {
        if (stopping)
            return;
        std::mt19937 rng(seed);
        for (std::size_t i = 0, n = rng() % (2 * max_threads); i < n; ++i) {
            const auto id = ledger.submit();
            ab::async_blocking(
                pool, ex, [r = rng()] { short_nap(r); }, [&, id](std::exception_ptr) { ledger.complete(id); });
        }
        bursts.expires_after(std::chrono::milliseconds(1 + rng() % 20));
        bursts.async_wait([&, next = rng()](boost::system::error_code) { burst(next); });
    };
    asio::post(io, [&] { burst(200); });

    // Thread churn, one call at a time: each finds no worker (they all retired) and starts one.
    std::thread one_at_a_time([&] {
        while (!stopping) {
            const auto id = ledger.submit();
            auto done = ab::async_blocking(
                pool.get_executor(), [] {}, asio::use_future);
            if (done.wait_for(60s) != std::future_status::ready)
                return; // lost: the ledger reports it
            ledger.complete(id);
            std::this_thread::sleep_for(1ms);
        }
    });

    // set_limits storm.
    std::thread resizer([&] {
        std::mt19937 rng(300);
        while (!stopping) {
            const std::size_t max = 1 + rng() % max_threads;
            pool.set_limits(std::min<std::size_t>(rng() % 3, max), max);
            std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 2000));
        }
        pool.set_limits(0, max_threads);
    });

    // Sampling, once a second: it also ends the run, and gives up on calls that never complete.
    std::cout << "\n== " << r.scenario << '\n'
              << std::right << std::setw(7) << "t_s" << std::setw(10) << "vm_mib" << std::setw(8) << "maps"
              << std::setw(9) << "threads" << std::setw(13) << "pool_threads" << std::setw(10) << "retired"
              << std::setw(11) << "submitted" << std::setw(12) << "outstanding" << std::setw(9) << "doubled\n";
    const auto start = clock_type::now();
    const auto drain_limit = 60s;
    asio::steady_timer sampler(io);
    std::function<void()> sample = [&] {
        const double t = std::chrono::duration<double>(clock_type::now() - start).count();
        const auto m = pool.metrics();
        const auto c = ledger.count();
        const double row[] = {t,
                              vm_size_kib() / 1024.0,
                              double(map_count()),
                              double(live_threads()),
                              double(m.threads),
                              double(m.threads_retired),
                              double(c.submitted),
                              double(c.outstanding()),
                              double(c.doubled)};
        const char* names[] = {"t_s",     "vm_mib",    "maps",        "threads", "pool_threads",
                               "retired", "submitted", "outstanding", "doubled"};
        const int widths[] = {7, 10, 8, 9, 13, 10, 11, 12, 8};
        for (std::size_t i = 0; i < std::size(row); ++i) {
            f.values[names[i]].push_back(row[i]);
            std::cout << std::setw(widths[i]) << std::fixed << std::setprecision(i == 0 ? 1 : 0) << row[i];
        }
        std::cout << std::endl;
        if (t >= std::chrono::duration<double>(duration).count())
            stopping = true;
        if (stopping && (c.outstanding() == 0 || clock_type::now() - start > duration + drain_limit)) {
            if (c.outstanding() != 0)
                io.stop(); // calls that never complete: give up on them
            return;
        }
        sampler.expires_after(sample_every);
        sampler.async_wait([&](boost::system::error_code) { sample(); });
    };
    sample();
    io.run();
    one_at_a_time.join();
    resizer.join();

    // The verdict. The baseline is the first third of the run, by when the threads and malloc
    // arenas a flat run needs exist; the end must not be far above it. The margins (256 maps,
    // 2 GiB: 16 threads' stacks and a few 64 MiB arenas more) are far below what a leak of
    // retired threads adds (2 maps and 8 MiB each, over a thousand retirements a second).
    const auto c = ledger.count();
    const auto& maps = f.values["maps"];
    const auto& vm = f.values["vm_mib"];
    const std::size_t third = std::max<std::size_t>(1, maps.size() / 3);
    const double maps_base = *std::max_element(maps.begin(), maps.begin() + third);
    const double vm_base = *std::max_element(vm.begin(), vm.begin() + third);
    const double maps_growth = maps.back() - maps_base, vm_growth = vm.back() - vm_base;
    const double peak_threads = *std::max_element(f.values["threads"].begin(), f.values["threads"].end());
    f.values["lost"].push_back(double(c.outstanding()));
    f.values["doubled_total"].push_back(double(c.doubled));
    f.values["maps_growth"].push_back(maps_growth);
    f.values["vm_growth_mib"].push_back(vm_growth);
    f.values["peak_live_threads"].push_back(peak_threads);
    if (c.outstanding() != 0)
        failures.push_back("soak: " + std::to_string(c.outstanding()) + " calls never completed");
    if (c.doubled != 0)
        failures.push_back("soak: " + std::to_string(c.doubled) + " calls completed more than once");
    if (maps_growth > 256)
        failures.push_back("soak: memory maps grew by " + std::to_string(long(maps_growth)) + " after warm-up");
    if (vm_growth > 2048)
        failures.push_back("soak: virtual memory grew by " + std::to_string(long(vm_growth)) + " MiB after warm-up");
    if (peak_threads > 64)
        failures.push_back("soak: " + std::to_string(long(peak_threads)) + " threads at once");
    std::cout << c.submitted << " calls, " << c.outstanding() << " lost, " << c.doubled << " doubled; maps "
              << std::showpos << long(maps_growth) << ", VM " << long(vm_growth) << std::noshowpos
              << " MiB after warm-up; at most " << long(peak_threads) << " threads\n";
    r.contenders.emplace_back("async_blocking", std::move(f));
    return r;
}

std::string machine_description()
{
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string model;
    for (std::string line; std::getline(cpuinfo, line);)
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    return std::to_string(std::thread::hardware_concurrency()) + " x " + model;
}

} // namespace

int main(int argc, char** argv)
{
    config cfg;
    std::string scenario = "all", json_path;
    const std::vector<std::string> names = {"tiny-throughput",
                                            "tiny-latency",
                                            "burst-sleep",
                                            "queued-memory",
                                            "loop-lag",
                                            "idle-cost",
                                            "metrics-overhead",
                                            "multi-submitter",
                                            "cpu-backlog",
                                            "mixed",
                                            "busy-machine",
                                            "loop-overhead",
                                            "soak"};
    int soak_seconds = 0; // not given: the mode's default
    po::options_description desc("asio_blocking_bench: async_blocking against hand-rolled alternatives\n\nOptions");
    desc.add_options()("help,h", "show this help")(
        "scenario", po::value(&scenario)->default_value(scenario),
        "tiny-throughput, tiny-latency, burst-sleep, queued-memory, loop-lag, idle-cost, metrics-overhead, "
        "multi-submitter, cpu-backlog, mixed, busy-machine, loop-overhead, soak, or all")(
        "reps", po::value(&cfg.reps)->default_value(cfg.reps), "repetitions per contender")(
        "soak-seconds", po::value(&soak_seconds), "how long the soak runs (default 180, 5 with --smoke)")(
        "json", po::value(&json_path), "write all figures as JSON")("smoke", "tiny sizes, one repetition (CI)");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
        if (vm.count("help")) {
            std::cout << desc << '\n';
            return 0;
        }
        if (scenario != "all" && std::find(names.begin(), names.end(), scenario) == names.end())
            throw po::error("--scenario: unknown scenario '" + scenario + "'");
        if (cfg.reps < 1)
            throw po::error("--reps must be at least 1");
        if (vm.count("soak-seconds") && (soak_seconds < 1 || soak_seconds > 24 * 3600))
            throw po::error("--soak-seconds must be between 1 and 86400");
    } catch (const po::error& e) {
        std::cerr << "asio_blocking_bench: " << e.what() << '\n';
        return 2;
    }
    if (vm.count("smoke")) {
        cfg.smoke = true;
        cfg.reps = 1;
    }
    const std::string machine = machine_description();
    std::cout << "asio_blocking_bench on " << machine << (cfg.smoke ? " (smoke mode)" : "") << ", " << cfg.reps
              << " repetitions\n";
    auto wanted = [&](const std::string& n) {
        return scenario == "all" || scenario == n;
    };
    std::vector<scenario_result> results;
    auto add = [&](scenario_result r) {
        print(r);
        results.push_back(std::move(r));
    };
    if (wanted("tiny-throughput")) {
        add(tiny_throughput(cfg, 1024));
        add(tiny_throughput(cfg, 0));
    }
    if (wanted("tiny-latency"))
        add(tiny_latency(cfg));
    if (wanted("burst-sleep"))
        add(burst_sleep(cfg));
    if (wanted("queued-memory"))
        add(queued_memory(cfg));
    if (wanted("loop-lag"))
        add(loop_lag(cfg));
    if (wanted("idle-cost"))
        add(idle_cost(cfg));
    if (wanted("metrics-overhead"))
        add(metrics_overhead(cfg));
    if (wanted("loop-overhead"))
        add(loop_overhead(cfg));
    if (wanted("multi-submitter")) {
        add(multi_submitter(cfg, true));
        add(multi_submitter(cfg, false));
    }
    if (wanted("cpu-backlog"))
        add(cpu_backlog(cfg));
    if (wanted("mixed"))
        add(mixed(cfg));
    if (wanted("busy-machine"))
        add(busy_machine(cfg));
    std::vector<std::string> failures; // sanity checks, not timing goals
    if (wanted("soak"))
        add(soak(cfg, std::chrono::seconds(soak_seconds ? soak_seconds : cfg.smoke ? 5 : 180), failures));
    if (!json_path.empty()) {
        std::ofstream out(json_path);
        out << to_json(results, machine);
    }
    for (const auto& failure : failures)
        std::cerr << "asio_blocking_bench: FAILED " << failure << '\n';
    return failures.empty() ? 0 : 1;
}
