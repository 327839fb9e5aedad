#!/usr/bin/env python3
"""Runs asio_blocking_demo briefly: checks its SVG parses as XML with non-empty series, its JSON
parses and adds up, blocking calls made on the loop (--inline-every) are reported as stalls naming
the blocking function, and bad input prints one line naming the option and exits with status 2."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

demo = sys.argv[1]
failures = []
checks = 0


def check(condition, message):
    global checks
    checks += 1
    if not condition:
        failures.append(message)


with tempfile.TemporaryDirectory() as tmp:
    svg, js = Path(tmp) / "t.svg", Path(tmp) / "t.json"
    run = subprocess.run([demo, "--jobs", "300", "--rate", "0", "--max-threads", "16", "--idle-timeout", "300ms",
                          "--svg", str(svg), "--json", str(js)], capture_output=True, text=True, timeout=300)
    check(run.returncode == 0, f"demo exited {run.returncode}: {run.stderr}")
    check("Summary" in run.stdout, "no summary table")
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    check(root.tag == ns + "svg" and root.get("version") == "1.1", "not an SVG 1.1 root")
    series = {p.get("data-name"): p.get("points").split() for p in root.iter(ns + "polyline") if p.get("data-name")}
    for name in ("threads", "busy", "queued", "loop lag"):
        check(len(series.get(name, [])) > 0, f"series {name} empty")
    check(any(t.text and "time (s)" in t.text for t in root.iter(ns + "text")), "no time axis label")
    report = json.loads(js.read_text())
    pool = report["pool"]
    check(report["done"] == 300, "not every request done")
    check(pool["completed"] + pool["failed"] + pool["cancelled"] + pool["rejected"] + pool["expired"]
          == pool["submitted"], "metrics do not add up")
    check(pool["peak_threads"] > 1, "the pool did not grow for the burst")

    # Every 10th request sleeps 5-20 ms on the loop itself: stalls over a 4 ms threshold.
    inline_svg, inline_js = Path(tmp) / "i.svg", Path(tmp) / "i.json"
    run = subprocess.run([demo, "--jobs", "200", "--rate", "1000", "--mix", "db=100", "--inline-every", "10",
                          "--stall-threshold", "4ms", "--idle-timeout", "300ms", "--svg", str(inline_svg),
                          "--json", str(inline_js)], capture_output=True, text=True, timeout=300)
    check(run.returncode == 0, f"inline demo exited {run.returncode}: {run.stderr}")
    inline = json.loads(inline_js.read_text())
    check(inline["stalls"] >= 1, f"no stall reported with --inline-every: {inline['stalls']}")
    check("event-loop stalls   " + str(inline["stalls"]) in run.stdout, "the summary does not show the stall count")
    # Under a sanitizer the demo's own code is slow enough to stall a 4 ms loop first.
    sanitized = "ASAN_OPTIONS" in os.environ or "TSAN_OPTIONS" in os.environ
    check("first stall in" in run.stdout and (sanitized or "database_call" in run.stdout),
          f"the summary does not name the blocking function: {run.stdout[-600:]}")
    check(any(r.get("class") == "stall" for r in ET.parse(inline_svg).getroot().iter(ns + "rect")),
          "the timeline does not mark the stalls")
    # --prometheus prints the exposition after the summary (where built with prometheus-cpp).
    prom = subprocess.run([demo, "--jobs", "50", "--rate", "0", "--svg", "", "--prometheus"], capture_output=True,
                          text=True, timeout=300)
    if prom.returncode == 2 and "prometheus-cpp" in prom.stderr:
        print("--prometheus: not in this build")
    else:
        check(prom.returncode == 0, f"--prometheus: exit {prom.returncode}: {prom.stderr}")
        exposition = prom.stdout[prom.stdout.find("# HELP asio_blocking_"):]
        check("# TYPE asio_blocking_queue_wait_seconds histogram" in exposition, "--prometheus: no exposition")
        check("asio_blocking_completed_total 50" in exposition, "--prometheus: completed_total is not 50")
        promtool = shutil.which("promtool")
        if promtool:
            lint = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
                                  timeout=60)
            check(lint.returncode == 0, f"promtool check metrics: {lint.stdout}{lint.stderr}")

    for args, option in ((["--bogus"], "bogus"), (["--max-threads", "0"], "--max-threads"),
                         (["--idle-timeout", "banana"], "--idle-timeout"), (["--overflow", "drop"], "--overflow"),
                         (["--mix", "db=x"], "--mix"),
                         (["--stall-threshold", "soon"], "--stall-threshold"), (["--inline-every", "-1"], "--inline-every")):
        bad = subprocess.run([demo, *args, "--svg", ""], capture_output=True, text=True, timeout=60)
        lines = bad.stderr.strip().splitlines()
        check(bad.returncode == 2, f"{args}: exit {bad.returncode}, expected 2")
        check(len(lines) == 1 and option in lines[0], f"{args}: expected one line naming {option}, got {bad.stderr!r}")
        check(bad.stdout == "", f"{args}: printed {bad.stdout!r}")

for f in failures:
    print("FAIL:", f)
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
