// asio_blocking_demo: a service under a burst of requests, each making a blocking call through
// async_blocking, while a timer on the event loop measures how responsive the loop stays.
// Watch the pool grow to meet the burst and shrink back after idle_timeout. With --inline-every N,
// every Nth request makes its blocking call on the loop instead -- the mistake a stall_detector
// catches and names.
#include "../common/loop_lag_probe.hpp"
#include "svg_timeline.hpp"

#include <asio_blocking.hpp>
#if ASIO_BLOCKING_DEMO_PROMETHEUS
#include <asio_blocking/prometheus.hpp>

#include <prometheus/text_serializer.h>
#endif

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;
namespace po = boost::program_options;
namespace ab = asio_blocking;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

/// Bad input: reported as one line naming the option, exit status 2.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::optional<clock_type::duration> parse_duration(const std::string& text)
{
    std::size_t used = 0;
    double value = 0;
    try {
        value = std::stod(text, &used);
    } catch (...) {
        return std::nullopt;
    }
    const std::string unit = text.substr(used);
    double seconds;
    if (unit == "us")
        seconds = value / 1e6;
    else if (unit == "ms")
        seconds = value / 1e3;
    else if (unit == "s" || unit.empty())
        seconds = value;
    else if (unit == "m" || unit == "min")
        seconds = value * 60;
    else
        return std::nullopt;
    if (!(seconds >= 0) || seconds > 1e6)
        return std::nullopt;
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
}

struct work_mix {
    int db = 60, cpu = 25, file = 15; // percentages
};

work_mix parse_mix(const std::string& text)
{
    work_mix mix{0, 0, 0};
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        const auto eq = item.find('=');
        if (eq == std::string::npos)
            throw usage_error("--mix: expected kind=percent pairs like db=60,cpu=25,file=15, got '" + text + "'");
        const std::string kind = item.substr(0, eq);
        int pct = 0;
        try {
            pct = std::stoi(item.substr(eq + 1));
        } catch (...) {
            throw usage_error("--mix: '" + item.substr(eq + 1) + "' is not a percentage");
        }
        if (pct < 0)
            throw usage_error("--mix: percentages must not be negative");
        if (kind == "db")
            mix.db = pct;
        else if (kind == "cpu")
            mix.cpu = pct;
        else if (kind == "file")
            mix.file = pct;
        else
            throw usage_error("--mix: unknown kind '" + kind + "' (use db, cpu, file)");
    }
    if (mix.db + mix.cpu + mix.file <= 0)
        throw usage_error("--mix: at least one kind needs a positive share");
    return mix;
}

struct settings {
    int jobs = 5000;
    double rate = 2000; // requests per second; 0 = all at once
    work_mix mix;
    ab::pool_options pool{.min_threads = 0, .max_threads = 64, .idle_timeout = 2s, .thread_name = "demo"};
    std::string svg_path = "asio_blocking_demo.svg";
    std::string json_path;
    clock_type::duration stall_threshold = 50ms; // zero: no stall detector
    int inline_every = 0;                        // every Nth request blocks the loop; 0: none
    bool prometheus = false;                     // print the Prometheus exposition at the end
};

std::optional<settings> parse_command_line(int argc, char** argv)
{
    settings s;
    std::string mix = "db=60,cpu=25,file=15", idle = "2s", overflow = "wait", stall = "50ms";
    std::size_t min_threads = 0, max_threads = 64, capacity = 0;
    po::options_description desc(
        "asio_blocking_demo: a burst of requests doing blocking work through async_blocking,\n"
        "while a timer measures event-loop lag. Durations take units: 500us, 500ms, 10s, 1m.\n\nOptions");
    desc.add_options()("help,h", "show this help")("jobs", po::value(&s.jobs)->default_value(s.jobs),
                                                   "number of requests")(
        "rate", po::value(&s.rate)->default_value(s.rate), "requests per second (0: all at once)")(
        "mix", po::value(&mix)->default_value(mix),
        "shares of work kinds: db (sleeps 5-20 ms), cpu (hashes ~1 ms), file (reads 64 KiB)")(
        "min-threads", po::value(&min_threads)->default_value(min_threads),
        "threads kept alive")("max-threads", po::value(&max_threads)->default_value(max_threads), "thread limit")(
        "idle-timeout", po::value(&idle)->default_value(idle), "idle time before a surplus thread retires")(
        "queue-capacity", po::value(&capacity)->default_value(capacity), "queue bound (0: unbounded)")(
        "overflow", po::value(&overflow)->default_value(overflow), "on a full queue: wait or reject")(
        "svg", po::value(&s.svg_path)->default_value(s.svg_path),
        "timeline SVG to write (empty: none)")("json", po::value(&s.json_path), "metrics JSON to write")(
        "stall-threshold", po::value(&stall)->default_value(stall),
        "report event-loop stalls this long, with the stalled stack (0: off)")(
        "inline-every", po::value(&s.inline_every)->default_value(s.inline_every),
        "every Nth request makes its blocking call on the event loop (0: never)")(
        "prometheus", po::bool_switch(&s.prometheus), "print the pool's Prometheus exposition at the end");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(e.what());
    }
    if (vm.count("help")) {
        std::cout << desc << '\n';
        return std::nullopt;
    }
    if (s.jobs <= 0)
        throw usage_error("--jobs must be at least 1");
#if !ASIO_BLOCKING_DEMO_PROMETHEUS
    if (s.prometheus)
        throw usage_error("--prometheus: this build has no prometheus-cpp (install prometheus-cpp-dev)");
#endif
    if (!(s.rate >= 0))
        throw usage_error("--rate must not be negative");
    s.mix = parse_mix(mix);
    const auto idle_timeout = parse_duration(idle);
    if (!idle_timeout)
        throw usage_error("--idle-timeout: '" + idle + "' is not a duration (use e.g. 500ms, 10s)");
    if (max_threads == 0)
        throw usage_error("--max-threads must be at least 1");
    if (min_threads > max_threads)
        throw usage_error("--min-threads must not exceed --max-threads");
    const auto stall_threshold = parse_duration(stall);
    if (!stall_threshold)
        throw usage_error("--stall-threshold: '" + stall + "' is not a duration (use e.g. 50ms, 0 for off)");
    s.stall_threshold = *stall_threshold;
    if (s.inline_every < 0)
        throw usage_error("--inline-every must not be negative");
    if (overflow != "wait" && overflow != "reject")
        throw usage_error("--overflow: '" + overflow + "' is not a policy (use wait or reject)");
    s.pool.min_threads = min_threads;
    s.pool.max_threads = max_threads;
    s.pool.idle_timeout = *idle_timeout;
    s.pool.queue_capacity = capacity;
    s.pool.on_overflow = overflow == "wait" ? ab::overflow_policy::wait : ab::overflow_policy::reject;
    return s;
}

// The three kinds of blocking work a request may do. Not inlined, so that a stall report names them.
[[gnu::noinline]] std::uint64_t database_call(unsigned seed)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + seed % 16)); // a network round trip
    return seed;
}

[[gnu::noinline]] std::uint64_t hash_password(unsigned seed)
{
    std::uint64_t h = 1469598103934665603ull ^ seed;
    for (int i = 0; i < 400'000; ++i) // about a millisecond of CPU
        h = (h ^ static_cast<unsigned char>(i)) * 1099511628211ull;
    return h;
}

[[gnu::noinline]] std::uint64_t read_file(int fd, unsigned seed)
{
    std::vector<char> buf(64 * 1024);
    const off_t offset = static_cast<off_t>(seed % 16) * 64 * 1024;
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
    if (n < 0)
        throw std::system_error(errno, std::generic_category(), "pread");
    return static_cast<std::uint64_t>(n);
}

// The innermost frame of the demo's own code in a stack: skips libc, the standard library,
// Boost and asio_blocking.
std::string innermost_user_frame(const std::vector<std::string>& stack)
{
    for (const std::string& frame : stack) {
        const bool library = frame.find('(') == std::string::npos || frame.rfind("std::", 0) == 0 ||
                             frame.rfind("boost::", 0) == 0 || frame.rfind("asio_blocking::", 0) == 0 ||
                             frame.rfind("__", 0) == 0 || frame.rfind("void std::", 0) == 0;
        if (!library)
            return frame;
    }
    return stack.empty() ? "(stack not captured)" : stack.front();
}

// What the stall detector reported, gathered on its thread.
struct stall_log {
    std::mutex mutex;
    std::vector<demo::span> spans; // one per stall, in seconds since the start
    std::vector<std::string> first_stack;
    bool any = false;
};

struct sample {
    double t;
    double threads, busy, queued, lag_ms;
};

double percentile(std::vector<double> v, double q)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(q * (v.size() - 1))];
}

int run(const settings& s)
{
    // A scratch file of 1 MiB for the "file" requests.
    char path[] = "/tmp/asio_blocking_demo.XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) {
        std::cerr << "asio_blocking_demo: cannot create a scratch file: " << std::strerror(errno) << '\n';
        return 1;
    }
    ::unlink(path);
    {
        std::vector<char> block(1 << 20, 'x');
        if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
            std::cerr << "asio_blocking_demo: cannot write the scratch file\n";
            return 1;
        }
    }

    asio::io_context io;
    ab::blocking_pool pool(s.pool);
    const auto start = clock_type::now();
    auto seconds_since_start = [&] {
        return std::chrono::duration<double>(clock_type::now() - start).count();
    };

    // 0. The stall detector: reports repeat as a stall doubles; one span per stall, grown by each.
    stall_log stalls;
    std::optional<ab::stall_detector> detector;
    if (s.stall_threshold > clock_type::duration::zero())
        detector.emplace(
            io, ab::stall_options{.threshold = s.stall_threshold, .on_stall = [&](const ab::stall_report& r) {
                                      const double now = seconds_since_start();
                                      const double began = now - std::chrono::duration<double>(r.duration).count();
                                      std::lock_guard<std::mutex> lock(stalls.mutex);
                                      if (!stalls.any) {
                                          stalls.any = true;
                                          stalls.first_stack = r.stack;
                                      }
                                      if (!stalls.spans.empty() && began <= stalls.spans.back().end_s)
                                          stalls.spans.back().end_s = now;
                                      else
                                          stalls.spans.push_back({began, now, "stall"});
                                  }});

    int submitted = 0, done = 0, failed = 0, rejected = 0;
    double last_done_at = 0;
    std::mt19937 rng(42);
    const int total_share = s.mix.db + s.mix.cpu + s.mix.file;

    // 1. Requests arrive at the configured rate; each does its blocking work on the pool.
    auto submit_one = [&] {
        const unsigned seed = static_cast<unsigned>(rng());
        const int pick = static_cast<int>(seed % static_cast<unsigned>(total_share));
        auto on_done = [&](std::exception_ptr e, std::uint64_t) {
            ++done;
            last_done_at = seconds_since_start();
            if (!e)
                return;
            try {
                std::rethrow_exception(e);
            } catch (const boost::system::system_error& se) {
                (se.code() == ab::error::queue_full ? rejected : failed) += 1;
            } catch (...) {
                ++failed;
            }
        };
        ++submitted;
        if (s.inline_every > 0 && submitted % s.inline_every == 0) {
            // The mistake: the blocking call made on the loop itself.
            std::uint64_t r = pick < s.mix.db               ? database_call(seed)
                              : pick < s.mix.db + s.mix.cpu ? hash_password(seed)
                                                            : read_file(fd, seed);
            on_done(nullptr, r);
            return;
        }
        if (pick < s.mix.db)
            ab::async_blocking(
                pool, io.get_executor(), [seed] { return database_call(seed); }, on_done);
        else if (pick < s.mix.db + s.mix.cpu)
            ab::async_blocking(
                pool, io.get_executor(), [seed] { return hash_password(seed); }, on_done);
        else
            ab::async_blocking(
                pool, io.get_executor(), [fd, seed] { return read_file(fd, seed); }, on_done);
    };
    asio::steady_timer arrivals(io);
    std::function<void()> arrive = [&] {
        const double due = s.rate <= 0 ? s.jobs : std::min<double>(s.jobs, seconds_since_start() * s.rate + 1);
        while (submitted < due)
            submit_one();
        if (submitted < s.jobs) {
            arrivals.expires_after(1ms);
            arrivals.async_wait([&](auto ec) {
                if (!ec)
                    arrive();
            });
        }
    };
    asio::post(io, arrive);

    // 2. A 5 ms heartbeat on the loop: how late it fires is the loop's lag.
    example::loop_lag_probe heartbeat(io, 5ms);
    heartbeat.start();

    // 3. Every 100 ms: a sample for the timeline, and the progress line.
    const bool tty = ::isatty(STDOUT_FILENO);
    std::vector<sample> samples{{0.0, double(pool.metrics().threads), 0.0, 0.0, 0.0}};
    asio::steady_timer sampler(io);
    double last_print = -1;
    const double idle_s = std::chrono::duration<double>(s.pool.idle_timeout).count();
    std::function<void()> take_sample = [&] {
        sampler.expires_after(100ms);
        sampler.async_wait([&](auto ec) {
            if (ec)
                return;
            const auto m = pool.metrics();
            const double t = seconds_since_start();
            samples.push_back({t, double(m.threads), double(m.busy_threads), double(m.queued + m.waiting_admission),
                               heartbeat.take_interval_max_us() / 1000});
            std::ostringstream line;
            line << std::fixed << std::setprecision(1) << std::setw(5) << t << "s  done " << done << '/' << s.jobs
                 << "  threads " << m.busy_threads << " busy / " << m.idle_threads << " idle  queued " << m.queued
                 << "  p99 wait " << std::setprecision(2)
                 << std::chrono::duration<double, std::milli>(m.queue_wait.p99).count() << " ms  loop lag "
                 << samples.back().lag_ms << " ms";
            if (tty) {
                std::cout << '\r' << line.str() << "\033[K" << std::flush;
            } else if (t - last_print >= 1.0) {
                std::cout << line.str() << '\n';
                last_print = t;
            }
            // Done once every request completed and the pool is back to min_threads (or has
            // had idle_timeout and a second to get there).
            const bool all_done = done == s.jobs;
            if (all_done && (m.threads <= s.pool.min_threads || t - last_done_at > idle_s + 1.0)) {
                heartbeat.stop();
                arrivals.cancel();
                return;
            }
            take_sample();
        });
    };
    take_sample();

    io.run();
    if (tty)
        std::cout << '\n';
    ::close(fd);

    // 4. The summary.
    std::vector<double> lags_ms;
    for (double us : heartbeat.lags_us())
        lags_ms.push_back(us / 1000);
    const auto m = pool.metrics();
    const double wall = seconds_since_start();
    auto ms = [](std::chrono::nanoseconds d) {
        return std::chrono::duration<double, std::milli>(d).count();
    };
    std::cout << "\nSummary\n"
              << std::fixed << std::setprecision(3) << "  requests            " << s.jobs << " ("
              << done - failed - rejected << " ok, " << failed << " failed, " << rejected << " rejected)\n"
              << "  wall time           " << wall << " s (last request done at " << last_done_at << " s)\n"
              << "  throughput          " << (last_done_at > 0 ? done / last_done_at : 0) << " requests/s\n"
              << "  queue wait          p50 " << ms(m.queue_wait.p50) << " ms, p99 " << ms(m.queue_wait.p99)
              << " ms, max " << ms(m.queue_wait.max) << " ms\n"
              << "  run time            p50 " << ms(m.run_time.p50) << " ms, p99 " << ms(m.run_time.p99) << " ms\n"
              << "  event-loop lag      p50 " << percentile(lags_ms, 0.5) << " ms, p99 " << percentile(lags_ms, 0.99)
              << " ms, max " << percentile(lags_ms, 1.0) << " ms\n"
              << "  threads             peak " << m.peak_threads << ", started " << m.threads_started << ", retired "
              << m.threads_retired << ", now " << m.threads << "\n"
              << "  pool                " << m << '\n';
    std::vector<demo::span> stall_spans;
    std::uint64_t stall_count = 0;
    clock_type::duration longest{};
    if (detector) {
        stall_count = detector->stalls();
        longest = detector->longest_stall();
        detector.reset(); // finishes a report in progress
        std::lock_guard<std::mutex> lock(stalls.mutex);
        stall_spans = stalls.spans;
        std::cout << "  event-loop stalls   " << stall_count << " (threshold "
                  << std::chrono::duration<double, std::milli>(s.stall_threshold).count() << " ms), longest "
                  << std::chrono::duration<double, std::milli>(longest).count() << " ms\n";
        if (stalls.any)
            std::cout << "  first stall in      " << innermost_user_frame(stalls.first_stack) << '\n';
    }

    std::vector<double> times;
    demo::series threads{"threads", "#1f77b4", {}}, busy{"busy", "#ff7f0e", {}}, queued{"queued", "#2ca02c", {}},
        lag{"loop lag", "#d62728", {}};
    for (const sample& smp : samples) {
        times.push_back(smp.t);
        threads.values.push_back(smp.threads);
        busy.values.push_back(smp.busy);
        queued.values.push_back(smp.queued);
        lag.values.push_back(smp.lag_ms);
    }
    if (!s.svg_path.empty()) {
        std::ofstream out(s.svg_path);
        out << demo::render_timeline("asio_blocking_demo: " + std::to_string(s.jobs) + " requests, max_threads " +
                                         std::to_string(s.pool.max_threads),
                                     times,
                                     {{"pool threads", "count", {threads, busy}},
                                      {"calls waiting", "count", {queued}},
                                      {"event-loop lag", "ms", {lag}}},
                                     {{last_done_at, "last request done"}}, stall_spans);
        std::cout << "timeline written to " << s.svg_path << '\n';
        if (!out)
            std::cerr << "asio_blocking_demo: cannot write " << s.svg_path << '\n';
    }
    if (!s.json_path.empty()) {
        std::ofstream out(s.json_path);
        out << "{\"jobs\":" << s.jobs << ",\"done\":" << done << ",\"failed\":" << failed
            << ",\"rejected\":" << rejected << ",\"wall_s\":" << wall
            << ",\"loop_lag_ms\":{\"p50\":" << percentile(lags_ms, 0.5) << ",\"p99\":" << percentile(lags_ms, 0.99)
            << ",\"max\":" << percentile(lags_ms, 1.0) << "},\"stalls\":" << stall_count
            << ",\"longest_stall_ms\":" << std::chrono::duration<double, std::milli>(longest).count()
            << ",\"pool\":" << ab::to_json(m) << "}\n";
    }
#if ASIO_BLOCKING_DEMO_PROMETHEUS
    if (s.prometheus)
        std::cout << "\n" << ::prometheus::TextSerializer().Serialize(ab::prometheus_collector(pool).Collect());
#endif
    return done == s.jobs ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        const auto s = parse_command_line(argc, argv);
        if (!s)
            return 0;
        return run(*s);
    } catch (const usage_error& e) {
        std::cerr << "asio_blocking_demo: " << e.what() << '\n';
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "asio_blocking_demo: " << e.what() << '\n';
        return 1;
    }
}
