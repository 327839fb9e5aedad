#!/usr/bin/env python3
"""End-to-end test of login_service over real sockets on 127.0.0.1 with a real database file:
right password 200, wrong 401, unknown user 401, malformed 400, oversized 413, unknown path 404;
/health keeps answering while 32 logins are in flight; bad options exit 2 with one line."""
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

binary = sys.argv[1]
failures, checks = [], 0


def check(condition, message):
    global checks
    checks += 1
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)


def request(port, path, body=None, timeout=60):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw(port, payload, timeout=30):
    """Sends bytes as they are; returns the status code of the reply (0 if none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    line = reply.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 else 0


for args, option in ((["--bogus"], "bogus"), (["--mode", "fast"], "--mode"), (["--port", "70000"], "--port")):
    bad = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    lines = bad.stderr.strip().splitlines()
    check(bad.returncode == 2, f"{args}: exit {bad.returncode}, expected 2")
    check(len(lines) == 1 and option in lines[0], f"{args}: expected one line naming {option}: {bad.stderr!r}")

with tempfile.TemporaryDirectory() as tmp:
    db = Path(tmp) / "users.db"
    server = subprocess.Popen([binary, "--init-db", "--db", str(db), "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()
        check(line.startswith("listening on 127.0.0.1:"), f"unexpected first line {line!r}")
        port = int(line.rsplit(":", 1)[1])
        check(db.exists() and db.stat().st_size > 0, "no database file")

        status, body = request(port, "/login", "user=alice&password=wonderland")
        check(status == 200 and json.loads(body).get("ok") is True, f"right password: {status} {body}")
        status, _ = request(port, "/login", "user=alice&password=wrong")
        check(status == 401, f"wrong password: {status}")
        status, _ = request(port, "/login", "user=mallory&password=x")
        check(status == 401, f"unknown user: {status}")
        status, _ = request(port, "/login", "user=alice")
        check(status == 400, f"missing password: {status}")
        status, _ = request(port, "/login", "user=%zz&password=x")
        check(status == 400, f"bad encoding: {status}")
        status, _ = request(port, "/login", "user=alice&password=" + "x" * 10000)
        check(status == 413, f"oversized body: {status}")
        status, _ = request(port, "/nowhere")
        check(status == 404, f"unknown path: {status}")
        check(raw(port, b"GARBAGE\r\n\r\n") == 400, "garbage request line")
        check(raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n") == 400, "bad header")

        # 32 logins in flight; /health must keep answering quickly meanwhile.
        results = []

        def login():
            results.append(request(port, "/login", "user=bob&password=builder", timeout=120)[0])

        threads = [threading.Thread(target=login) for _ in range(32)]
        for t in threads:
            t.start()
        time.sleep(0.05)  # let the logins arrive: this is load, not sequencing
        health = []
        while any(t.is_alive() for t in threads) and len(health) < 50:
            start = time.monotonic()
            status, _ = request(port, "/health")
            health.append((status, time.monotonic() - start))
        for t in threads:
            t.join()
        check(results.count(200) == 32, f"concurrent logins: {results}")
        check(all(s == 200 for s, _ in health) and health, "health failed under load")
        slowest = max(d for _, d in health) if health else 0
        print(f"/health answered {len(health)} times during the logins, slowest {slowest * 1000:.1f} ms")
        check(slowest < 2.0, f"/health took {slowest:.2f} s while logins ran")  # generous: numbers go to bench

        # One client's garbage does not affect another's request.
        hog = socket.create_connection(("127.0.0.1", port))
        hog.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nuser=")  # never finishes
        status, _ = request(port, "/health")
        check(status == 200, "a stalled client blocked another")
        hog.close()

        status, body = request(port, "/metrics.json")
        metrics = json.loads(body)
        check(status == 200 and metrics["pool"]["completed"] > 0, f"metrics: {status} {body[:200]}")
        check({l["name"] for l in metrics["lanes"]} == {"db"}, "the db lane missing from metrics")
        check("stalls" in metrics and metrics["stalls"]["count"] >= 0, "no stall count in metrics")
        status, text = request(port, "/metrics")
        check(status == 200 and 'asio_blocking_lane_completed_total{lane="db",pool="login"}' in text,
              f"Prometheus exposition: {status} {text[:200]}")
    finally:
        server.terminate()
        try:
            code = server.wait(timeout=60)
            check(code == 0, f"server exit code {code}: {server.stderr.read()}")
        except subprocess.TimeoutExpired:
            server.kill()
            check(False, "server did not stop on SIGTERM")

    # The comparison modes serve the same answers (the loop just stalls in inline mode).
    # In inline mode each Argon2id verification (tens of ms) stalls the loop: a 5 ms threshold
    # reports it on stderr and counts it in /metrics.
    for mode in ("inline", "thread-per-request"):
        other = subprocess.Popen([binary, "--db", str(db), "--port", "0", "--mode", mode, "--stall-threshold", "5ms"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            port = int(other.stdout.readline().strip().rsplit(":", 1)[1])
            status, _ = request(port, "/login", "user=alice&password=wonderland")
            check(status == 200, f"{mode}: right password gave {status}")
            status, _ = request(port, "/login", "user=alice&password=nope")
            check(status == 401, f"{mode}: wrong password gave {status}")
            # The stall is counted once its stack is symbolized: the first time, the debug
            # information is loaded, which takes a while on a loaded machine.
            deadline = time.monotonic() + 60
            while True:
                status, body = request(port, "/metrics.json")
                stalls = json.loads(body)["stalls"]["count"] if status == 200 else -1
                if mode != "inline" or stalls >= 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)  # polling for a condition, with a deadline
            if mode == "inline":
                check(stalls >= 1, f"inline: no stall in /metrics.json: {body[-200:]}")
                status, text = request(port, "/metrics")
                check(status == 200 and 'asio_blocking_loop_stalls_total{pool="login"}' in text,
                      f"inline: no stall counter in /metrics: {text[-300:]}")
        finally:
            other.terminate()
            code = other.wait(timeout=60)
            err = other.stderr.read()
            check(code == 0, f"{mode}: server exit code {code}: {err}")
            if mode == "inline":
                check("event loop stalled" in err, f"inline: no stall report on stderr: {err[-500:]}")

print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
