#!/usr/bin/env python3
"""End-to-end test against the real Prometheus server: a login service on 127.0.0.1 is scraped
every second by `prometheus` (temporary data directory, loopback only); after logins, Prometheus's
HTTP API must show the completed-calls counter grown by them and a finite queue-wait p99 from
histogram_quantile over rate(); `promtool check metrics` must accept the exposition as it is.
Exits 77 (ctest: skipped) where prometheus or promtool is not installed."""
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

LOGINS = 20
PATIENCE = 90  # seconds for each wait: the machine may be slow and loaded

binary = sys.argv[1]
prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
if not prometheus or not promtool:
    print("SKIP: needs the Prometheus server and promtool (Debian package `prometheus`)")
    sys.exit(77)

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)
    return condition


def get(url, body=None, timeout=30):
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:  # not listening yet
        return 0, str(e)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, probe):
    """Calls probe() until it returns something other than None; fails after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def stop(process):
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    service = server = None
    try:
        service = subprocess.Popen([binary, "--init-db", "--db", str(tmp / "users.db"), "--port", "0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = service.stdout.readline().strip()
        if not check(line.startswith("listening on 127.0.0.1:"), f"login service: unexpected first line {line!r}"):
            raise RuntimeError("login service did not start")
        service_port = int(line.rsplit(":", 1)[1])

        prom_port = free_port()
        api = f"http://127.0.0.1:{prom_port}"
        (tmp / "prometheus.yml").write_text(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: login_service
    static_configs:
      - targets: ['127.0.0.1:{service_port}']
""")
        log = open(tmp / "prometheus.log", "w")
        server = subprocess.Popen([prometheus, f"--config.file={tmp / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
                                   "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)

        def query(expr):
            """The values of an instant query's result vector (None until Prometheus answers)."""
            status, body = get(f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            if status != 200:
                return None
            return [float(r["value"][1]) for r in json.loads(body)["data"]["result"]]

        wait_for("Prometheus to be ready", lambda: True if get(f"{api}/-/ready")[0] == 200 else None)
        completed = 'asio_blocking_completed_total{job="login_service",pool="login"}'
        db_done = 'asio_blocking_lane_completed_total{job="login_service",pool="login",lane="db"}'
        before = wait_for("the first scrape", lambda: (query(completed) or None) and query(completed)[0])
        db_before = wait_for("the lane series", lambda: (query(db_done) or None) and query(db_done)[0])

        # Spread over a few seconds, so that rate() sees the counters move between scrapes.
        statuses = []
        for i in range(LOGINS):
            statuses.append(get(f"http://127.0.0.1:{service_port}/login", "user=alice&password=wonderland", 60)[0])
            time.sleep(0.2)
        check(statuses == [200] * LOGINS, f"logins: {statuses}")

        # Each login is two blocking calls: the user lookup (db lane) and the hash check (the pool itself).
        def grown():
            now, db_now = query(completed), query(db_done)
            if now and db_now and now[0] >= before + 2 * LOGINS and db_now[0] >= db_before + LOGINS:
                return now[0], db_now[0]
            return None

        try:
            now, db_now = wait_for("completed_total to grow by the logins", grown)
            check(db_now == db_before + LOGINS, f"db lane completed {db_before} -> {db_now}, expected +{LOGINS}")
            print(f"completed_total {before:g} -> {now:g}, db lane {db_before:g} -> {db_now:g}")
        except TimeoutError as e:
            check(False, f"{e}: {completed} = {query(completed)}, {db_done} = {query(db_done)}")

        p99 = ('histogram_quantile(0.99, sum by (le) '
               '(rate(asio_blocking_queue_wait_seconds_bucket{job="login_service"}[30s])))')

        def finite_p99():
            values = query(p99)
            return values[0] if values and math.isfinite(values[0]) else None

        try:
            value = wait_for("a finite queue-wait p99", finite_p99)
            check(0 <= value < 60, f"queue-wait p99 {value} s")
            print(f"queue-wait p99 over 30s: {value * 1e6:.1f} us")
        except TimeoutError as e:
            check(False, f"{e}: {p99} = {query(p99)}")

        saturation = 'max_over_time(asio_blocking_busy_threads[1m]) / asio_blocking_effective_max_threads'
        values = query(saturation)
        check(bool(values) and 0 <= values[0] <= 1, f"{saturation} = {values}")

        status, exposition = get(f"http://127.0.0.1:{service_port}/metrics")
        check(status == 200 and "asio_blocking_queue_wait_seconds_bucket" in exposition, f"/metrics: {status}")
        lint = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
                              timeout=60)
        check(lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(),
              f"promtool check metrics: exit {lint.returncode}: {lint.stdout}{lint.stderr}")
    except Exception as e:  # report, then still stop both servers
        check(False, f"{type(e).__name__}: {e}")
    finally:
        stop(server)
        stop(service)
        if failures and (tmp / "prometheus.log").exists():
            print("prometheus log:\n" + (tmp / "prometheus.log").read_text()[-3000:])

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok: scraped by Prometheus, counters and histogram_quantile as expected, promtool accepts the exposition")
