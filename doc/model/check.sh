#!/usr/bin/env bash
# Model-checks the spin models here: assertions and invalid end states (a process stuck: stop
# not terminating, or a call stranded) over every interleaving.
#   worker_lifecycle.pml  - pool workers: no job stranded, stop terminates;
#   batched_delivery.pml  - results reaching an io_context caller: each handler invoked or
#                           destroyed exactly once, none stranded, also across the context's
#                           shutdown and handlers that throw.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
for model in worker_lifecycle batched_delivery; do
    spin -a "$here/$model.pml"
    gcc -O2 -w -DSAFETY -DVECTORSZ=4096 -o pan pan.c
    ./pan -m100000 > result.txt || true
    grep -E "errors:|states, stored|assertion|invalid end state|depth reached" result.txt || true
    if ! grep -q "errors: 0" result.txt; then
        echo "spin found a violation in $model.pml:"
        cat result.txt
        spin -t -p "$here/$model.pml" 2>/dev/null | tail -40 || true
        exit 1
    fi
    echo "$model model: no violation (spin, errors: 0)"
done
