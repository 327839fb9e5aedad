// login_service: an HTTP/1.1 login endpoint on one event-loop thread. Every login reads a user
// record from SQLite and verifies an Argon2id hash (tens of milliseconds of CPU by design): both
// blocking, both run through async_blocking, while the same loop keeps answering /health.
//
//   login_service --init-db --db users.db --port 8080
//   curl -d 'user=alice&password=wonderland' http://127.0.0.1:8080/login
//
// --mode inline|thread-per-request runs the same blocking work on the loop itself, or on a new
// thread per call (at most --max-threads at once), so the difference can be measured on one
// binary (bench/login_bench.sh). A stall_detector (--stall-threshold) reports each handler that
// blocks the loop on stderr, with its stack, and counts them in /metrics: in inline mode, every login.
//
// This file holds the sockets, the database and the pool; the HTTP layer (limits, the
// per-connection loop, the routes) is in request_handling.hpp, which the fuzz target shares.
#include "../common/detached_threads.hpp"
#include "request_handling.hpp"

#include <asio_blocking.hpp>
#include <asio_blocking/prometheus.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>

#include <malloc.h>

#include <prometheus/text_serializer.h>
#include <sodium.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace po = boost::program_options;
namespace ab = asio_blocking;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

enum class run_mode { pool, inline_, thread_per_request };

// ---------------------------------------------------------------------------------------------
// SQLite: a few connections, one per concurrent lookup. The "db" lane's limit equals their
// number, so in pool mode a lookup never waits for a connection.

class user_store {
public:
    user_store(const std::string& path, std::size_t connections)
    {
        for (std::size_t i = 0; i < connections; ++i) {
            sqlite3* db = nullptr;
            if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
                const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
                sqlite3_close(db);
                throw std::runtime_error("cannot open " + path + ": " + msg);
            }
            sqlite3_busy_timeout(db, 5000);
            sqlite3_stmt* stmt = nullptr;
            if (sqlite3_prepare_v2(db, "SELECT hash FROM users WHERE name = ?1", -1, &stmt, nullptr) != SQLITE_OK) {
                const std::string msg = sqlite3_errmsg(db);
                sqlite3_close(db);
                throw std::runtime_error(path + " is not a user database (run with --init-db): " + msg);
            }
            free_.push_back({db, stmt});
        }
    }

    ~user_store()
    {
        for (auto& c : free_) {
            sqlite3_finalize(c.stmt);
            sqlite3_close(c.db);
        }
    }

    std::size_t connections() const { return free_.size(); }

    /// Blocking: the stored Argon2id hash of `name`, if the user exists.
    std::optional<std::string> find_hash(const std::string& name)
    {
        connection c = acquire();
        sqlite3_reset(c.stmt);
        sqlite3_bind_text(c.stmt, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
        std::optional<std::string> hash;
        const int rc = sqlite3_step(c.stmt);
        if (rc == SQLITE_ROW)
            hash = reinterpret_cast<const char*>(sqlite3_column_text(c.stmt, 0));
        sqlite3_reset(c.stmt);
        release(c);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            throw std::runtime_error("user lookup failed");
        return hash;
    }

    /// Creates (or refreshes) the database with the demo users.
    static void initialise(const std::string& path)
    {
        sqlite3* db = nullptr;
        if (sqlite3_open(path.c_str(), &db) != SQLITE_OK)
            throw std::runtime_error("cannot create " + path);
        auto exec = [&](const char* sql) {
            char* err = nullptr;
            if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
                const std::string msg = err ? err : "?";
                sqlite3_free(err);
                sqlite3_close(db);
                throw std::runtime_error("initialising " + path + ": " + msg);
            }
        };
        exec("CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, hash TEXT NOT NULL)");
        const std::pair<const char*, const char*> users[] = {
            {"alice", "wonderland"}, {"bob", "builder"}, {"carol", "christmas"}, {"dave", "hal9000"}};
        sqlite3_stmt* insert = nullptr;
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO users (name, hash) VALUES (?1, ?2)", -1, &insert, nullptr);
        for (const auto& [name, password] : users) {
            char hash[crypto_pwhash_STRBYTES];
            if (crypto_pwhash_str(hash, password, std::strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
                throw std::runtime_error("out of memory hashing a password");
            sqlite3_reset(insert);
            sqlite3_bind_text(insert, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(insert, 2, hash, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(insert) != SQLITE_DONE)
                throw std::runtime_error("cannot insert user");
        }
        sqlite3_finalize(insert);
        sqlite3_close(db);
    }

private:
    struct connection {
        sqlite3* db;
        sqlite3_stmt* stmt;
    };

    // In pool mode the lane guarantees a free connection; in the other modes callers may wait.
    connection acquire()
    {
        std::unique_lock lk(mutex_);
        available_.wait(lk, [&] { return !free_.empty(); });
        connection c = free_.back();
        free_.pop_back();
        return c;
    }

    void release(connection c)
    {
        {
            std::lock_guard lk(mutex_);
            free_.push_back(c);
        }
        available_.notify_one();
    }

    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<connection> free_;
};

// ---------------------------------------------------------------------------------------------
// The service

/// A password hash to verify against for unknown users, so that they take as long as known ones.
std::string dummy_hash()
{
    char hash[crypto_pwhash_STRBYTES];
    const char* pw = "no such user";
    if (crypto_pwhash_str(hash, pw, std::strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        throw std::runtime_error("out of memory hashing a password");
    return hash;
}

struct service final : login::login_backend {
    run_mode mode;
    user_store& users;
    ab::blocking_pool& pool;
    ab::lane db; // at most one call per SQLite connection: a real resource, so a lane bounds it
    // Argon2id needs no lane: the pool runs computing calls on about as many threads as there
    // are CPUs by itself, and only blocked ones (the lookups) on more.
    std::string unknown_user_hash = dummy_hash();
    // thread-per-request mode: a new thread per call, but no more at once than the pool may have
    // (--max-threads), so that the modes compare with the same thread budget; the rest wait.
    example::detached_threads request_threads;
    std::size_t max_request_threads = 64;
    std::size_t request_threads_running = 0;                   // on the loop only
    std::deque<std::function<void()>> request_threads_waiting; // on the loop only
    const ab::stall_detector* stalls = nullptr;                // null: not watching the loop
    ab::prometheus_collector prometheus;                       // read at each GET /metrics, costs nothing between

    service(run_mode m, user_store& u, ab::blocking_pool& p)
        : mode(m)
        , users(u)
        , pool(p)
        , db(p, u.connections(), "db")
        , prometheus(p, {{"pool", "login"}})
    {
        prometheus.add(db);
    }

    /// Runs blocking `fn` as the mode says: on the pool within `lane`, inline on the loop, or on
    /// a new thread.
    template <typename F>
    asio::awaitable<std::invoke_result_t<F>> blocking(ab::lane& lane, F fn)
    {
        return blocking_on(&lane, std::move(fn));
    }

    /// The same on the pool with no lane: the default pool of the loop's context.
    template <typename F>
    asio::awaitable<std::invoke_result_t<F>> blocking(F fn)
    {
        return blocking_on(nullptr, std::move(fn));
    }

    /// `lane`: nullptr for none.
    template <typename F>
    asio::awaitable<std::invoke_result_t<F>> blocking_on(ab::lane* lane, F fn)
    {
        using R = std::invoke_result_t<F>;
        auto ex = co_await asio::this_coro::executor;
        switch (mode) {
        case run_mode::pool:
            if (lane)
                co_return co_await ab::async_blocking(*lane, ex, std::move(fn), asio::use_awaitable);
            co_return co_await ab::async_blocking(ex, std::move(fn), asio::use_awaitable);
        case run_mode::inline_:
            co_return fn(); // stalls the loop: what the library exists to avoid
        case run_mode::thread_per_request: {
            // Named, not a temporary inside co_await (GCC 12 would destroy it twice).
            auto start_thread = [this, fn = std::move(fn), ex](auto handler) mutable {
                using handler_type = decltype(handler);
                struct job {
                    F fn;
                    handler_type handler;
                    decltype(asio::make_work_guard(ex)) work;
                };
                // Shared, as a start that waits for a free slot is held in a std::function.
                auto state = std::make_shared<job>(job{std::move(fn), std::move(handler), asio::make_work_guard(ex)});
                std::function<void()> start = [this, state = std::move(state)]() mutable {
                    start_request_thread(std::move(state));
                };
                if (request_threads_running < max_request_threads)
                    start();
                else
                    request_threads_waiting.push_back(std::move(start));
            };
            co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(std::exception_ptr, R)>(
                std::move(start_thread), asio::use_awaitable);
        }
        }
        throw std::logic_error("unknown mode");
    }

    /// Starts the thread of one call (thread-per-request mode); on the loop.
    template <typename Job>
    void start_request_thread(std::shared_ptr<Job> state)
    {
        request_threads.started();
        try {
            std::thread([this, state = std::move(state)]() mutable {
                run_on_this_thread(std::move(state), [this] { request_thread_done(); });
                request_threads.finished(); // only now may the loop and the database go away
            }).detach();
        } catch (...) {
            request_threads.finished();
            throw;
        }
        ++request_threads_running;
    }

    /// On the loop, once a request thread's result is there: its slot goes to the next waiting call.
    void request_thread_done()
    {
        --request_threads_running;
        if (request_threads_waiting.empty())
            return;
        auto start = std::move(request_threads_waiting.front());
        request_threads_waiting.pop_front();
        start();
    }

    /// The body of one request thread. Everything it holds of the loop (handler, work guard) is
    /// destroyed before it returns, so none of it outlives the loop.
    template <typename Job, typename Done>
    static void run_on_this_thread(std::shared_ptr<Job> state, Done done)
    {
        using R = std::invoke_result_t<decltype(state->fn)>;
        std::exception_ptr e;
        R result{};
        try {
            result = state->fn();
        } catch (...) {
            e = std::current_exception();
        }
        auto hex = asio::get_associated_executor(state->handler, state->work.get_executor());
        asio::post(hex, [handler = std::move(state->handler), e, result = std::move(result), done]() mutable {
            std::move(handler)(e, std::move(result));
            done(); // may start the next waiting call's thread, which may throw
        });
    }

    asio::awaitable<bool> check_password(std::string user, std::string password) override
    {
        // Named, not temporaries inside co_await: GCC 12 may destroy such temporaries twice
        // (GCC bugs 99576, 100611).
        auto lookup = [this, user] {
            return users.find_hash(user);
        };
        auto hash = co_await blocking(db, std::move(lookup));
        const std::string stored = hash ? *hash : unknown_user_hash;
        auto verify = [stored, password] {
            return crypto_pwhash_str_verify(stored.c_str(), password.data(), password.size()) == 0;
        };
        const bool ok = co_await blocking(std::move(verify));
        co_return ok&& hash.has_value();
    }

    /// The Prometheus text exposition format (0.0.4).
    std::string metrics_text() const override
    {
        auto families = prometheus.Collect();
        if (stalls != nullptr) { // the loop's own health beside the pool's
            auto family = [&](std::string name, std::string help, ::prometheus::MetricType type, double value) {
                ::prometheus::ClientMetric m;
                m.label = {{"pool", "login"}};
                (type == ::prometheus::MetricType::Counter ? m.counter.value : m.gauge.value) = value;
                families.push_back({std::move(name), std::move(help), type, {m}});
            };
            family("asio_blocking_loop_stalls_total", "Event-loop stalls seen by the stall detector.",
                   ::prometheus::MetricType::Counter, static_cast<double>(stalls->stalls()));
            family("asio_blocking_loop_longest_stall_seconds", "Longest event-loop stall that has ended.",
                   ::prometheus::MetricType::Gauge, std::chrono::duration<double>(stalls->longest_stall()).count());
        }
        return ::prometheus::TextSerializer().Serialize(families);
    }

    std::string metrics_json() const override
    {
        std::string stall_json;
        if (stalls != nullptr)
            stall_json = ",\"stalls\":{\"count\":" + std::to_string(stalls->stalls()) + ",\"longest_ns\":" +
                         std::to_string(std::chrono::nanoseconds(stalls->longest_stall()).count()) + "}";
        return "{\"pool\":" + ab::to_json(pool.metrics()) + ",\"lanes\":[" + ab::to_json(db.metrics()) + "]" +
               stall_json + "}";
    }
};

/// The message of an exception held in `e`.
std::string what(std::exception_ptr e)
{
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

/// Counts open connections against --max-connections.
struct connection_count {
    std::size_t open = 0, limit;
};

/// How long, and how much, a closing connection's remaining input is read and discarded.
constexpr auto linger_time = 1s;
constexpr std::size_t linger_bytes = 1 << 20;

asio::awaitable<void> session(beast::tcp_stream stream, login::login_backend& backend, login::request_limits limits,
                              connection_count& connections)
{
    struct counted {
        connection_count& c;
        ~counted() { --c.open; }
    } count{connections};
    co_await login::serve_connection(stream, backend, limits);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    // Closing with unread input resets the connection, and the client may then lose the reply
    // it is owed (the 413 for a request too large). So read and discard a little first.
    stream.expires_after(linger_time);
    std::array<char, 4096> sink;
    for (std::size_t drained = 0; drained < linger_bytes;) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
        if (ec)
            break;
        drained += n;
    }
}

/// Accepting fails while the process is out of file descriptors (EMFILE) or memory, and stays
/// failing at once while the connection waits in the backlog: without a pause in between, the
/// loop would spin at 100% CPU. The pause doubles up to this, and resets on the next success.
constexpr auto max_accept_backoff = 100ms;

/// Serves an accepted connection, or answers 503 and closes it if there are too many.
void start_session(tcp::socket socket, login::login_backend& backend, login::request_limits limits,
                   connection_count& connections)
{
    if (connections.open >= connections.limit) {
        // Say so and close, rather than leave the client in the backlog. A non-blocking
        // write: the reply fits an empty send buffer, or it is dropped.
        auto busy = login::make_response(http::status::service_unavailable, R"({"error":"too many connections"})");
        boost::system::error_code ignored;
        socket.non_blocking(true, ignored);
        http::write(socket, busy, ignored);
        socket.shutdown(tcp::socket::shutdown_send, ignored);
        return;
    }
    auto ex = socket.get_executor();
    ++connections.open;
    asio::co_spawn(ex, session(beast::tcp_stream(std::move(socket)), backend, limits, connections),
                   [](std::exception_ptr e) {
                       if (e) // a failure of one connection ends it only
                           std::cerr << "login_service: a connection failed: " << what(e) << '\n';
                   });
}

asio::awaitable<void> listen(tcp::acceptor acceptor, login::login_backend& backend, login::request_limits limits,
                             connection_count& connections)
{
    asio::steady_timer backoff(acceptor.get_executor());
    std::chrono::milliseconds pause = 1ms;
    for (;;) {
        try {
            auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec == asio::error::operation_aborted)
                co_return;
            if (!ec) {
                start_session(std::move(socket), backend, limits, connections);
                pause = 1ms;
                continue;
            }
        } catch (const std::exception& e) { // e.g. std::bad_alloc: that connection is lost, not the listener
            std::cerr << "login_service: accepting a connection failed: " << e.what() << '\n';
        }
        // e.g. too many open files: keep serving the connections there are, try again later
        backoff.expires_after(pause);
        co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
        pause = std::min<std::chrono::milliseconds>(pause * 2, max_accept_backoff);
    }
}

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

} // namespace

int main(int argc, char** argv)
{
    std::string address = "127.0.0.1", db_path = "login_service.db", mode_name = "pool", stall_text = "50ms";
    int port = 8080;
    std::size_t max_threads = 64, max_connections = 1000;
    double io_timeout_s = 30;
    po::options_description desc("login_service: HTTP login with Argon2id and SQLite on one event loop\n\nOptions");
    desc.add_options()("help,h", "show this help")("address", po::value(&address)->default_value(address),
                                                   "address to listen on")(
        "port", po::value(&port)->default_value(port), "port to listen on (0: any free port)")(
        "db", po::value(&db_path)->default_value(db_path), "SQLite user database")(
        "init-db", "create the database with demo users (alice/wonderland, bob/builder, ...) first")(
        "mode", po::value(&mode_name)->default_value(mode_name),
        "where blocking work runs: pool, inline (on the loop), thread-per-request")(
        "max-threads", po::value(&max_threads)->default_value(max_threads),
        "blocking pool's thread limit")("max-connections", po::value(&max_connections)->default_value(max_connections),
                                        "open connections at most; more are answered 503 and closed")(
        "io-timeout", po::value(&io_timeout_s)->default_value(io_timeout_s),
        "seconds a client has to send a request (or to read its response) before it is disconnected")(
        "stall-threshold", po::value(&stall_text)->default_value(stall_text),
        "report handlers blocking the loop this long, e.g. 50ms (0: off)");
    std::chrono::nanoseconds stall_threshold{};
    run_mode mode = run_mode::pool;
    po::variables_map vm;
    try {
        try {
            po::store(po::parse_command_line(argc, argv, desc), vm);
            po::notify(vm);
        } catch (const po::error& e) {
            throw usage_error(e.what());
        }
        if (vm.count("help")) {
            std::cout << desc << '\n';
            return 0;
        }
        if (mode_name == "pool")
            mode = run_mode::pool;
        else if (mode_name == "inline")
            mode = run_mode::inline_;
        else if (mode_name == "thread-per-request")
            mode = run_mode::thread_per_request;
        else
            throw usage_error("--mode: '" + mode_name + "' is not a mode (use pool, inline, thread-per-request)");
        if (port < 0 || port > 65535)
            throw usage_error("--port: " + std::to_string(port) + " is not a port number");
        if (max_threads == 0)
            throw usage_error("--max-threads must be at least 1");
        {
            std::size_t used = 0;
            double value = -1;
            try {
                value = std::stod(stall_text, &used);
            } catch (...) {
            }
            const std::string unit = stall_text.substr(used);
            const double scale = unit == "ms" ? 1e6 : unit == "us" ? 1e3 : unit == "s" || unit.empty() ? 1e9 : -1;
            if (!(value >= 0) || scale < 0 || value * scale > 3.6e12)
                throw usage_error("--stall-threshold: '" + stall_text + "' is not a duration (use e.g. 50ms, 0: off)");
            stall_threshold = std::chrono::nanoseconds(static_cast<std::int64_t>(value * scale));
        }
        if (max_connections == 0)
            throw usage_error("--max-connections must be at least 1");
        if (!(io_timeout_s >= 0.001 && io_timeout_s <= 24 * 3600)) // below 1 ms it would round to nothing
            throw usage_error("--io-timeout must be at least 0.001 (1 ms) and at most a day (86400)");
        boost::system::error_code ec;
        asio::ip::make_address(address, ec);
        if (ec)
            throw usage_error("--address: '" + address + "' is not an IP address");
    } catch (const usage_error& e) {
        std::cerr << "login_service: " << e.what() << '\n';
        return 2;
    }

    try {
        // One malloc arena per thread. glibc shares arenas once a process has more threads than
        // 8 per core, the event loop's among them; a worker at low priority preempted inside
        // malloc then holds the loop's next allocation (the stall detector saw /health wait 20
        // to 100 ms in malloc's arena lock). Before any thread starts.
        mallopt(M_ARENA_MAX, static_cast<int>(std::min<std::size_t>(max_threads, 4096)) + 16);
        if (sodium_init() < 0)
            throw std::runtime_error("libsodium failed to initialise");
        if (vm.count("init-db"))
            user_store::initialise(db_path);
        user_store users(db_path, 4);
        login::request_limits limits;
        limits.io_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(io_timeout_s));
        connection_count connections{.limit = max_connections}; // outlives the sessions in io
        asio::io_context io(1);
        // The loop's default pool, where async_blocking(ex, fn, token) runs fn: no sizing but
        // the thread limit.
        ab::configure_default_pool(io, {.max_threads = max_threads, .thread_name = "login"});
        ab::blocking_pool& pool = ab::default_pool(io);
        service svc(mode, users, pool);
        std::optional<ab::stall_detector> detector; // default report: stderr
        if (stall_threshold > 0ns) {
            detector.emplace(io, ab::stall_options{.threshold = stall_threshold});
            svc.stalls = &*detector;
        }
        svc.max_request_threads = max_threads;

        tcp::acceptor acceptor(io, {asio::ip::make_address(address), static_cast<unsigned short>(port)});
        const auto local = acceptor.local_endpoint();
        std::cout << "listening on " << local.address().to_string() << ':' << local.port() << std::endl;

        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](auto, int) {
            acceptor.close();
            io.stop();
        });
        asio::co_spawn(io, listen(std::move(acceptor), svc, limits, connections), asio::detached);
        // An exception escaping a handler (a bug, or memory running out) costs the connection
        // whose operation threw, not the process: run() resumes with every other connection.
        for (;;) {
            try {
                io.run();
                break;
            } catch (const std::exception& e) {
                std::cerr << "login_service: a handler threw, its connection is dropped: " << e.what() << '\n';
            }
        }
        pool.stop(); // queued logins are aborted; running ones finish
        pool.join();
        svc.request_threads.wait_all(); // they use the loop and the database
    } catch (const std::exception& e) {
        std::cerr << "login_service: " << e.what() << '\n';
        return 1;
    }
}
