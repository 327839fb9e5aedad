#!/usr/bin/env bash
# Model-checks worker_lifecycle.pml with spin: assertions (including the no-stranding invariant)
# and invalid end states (a process stuck, i.e. stop not terminating) over every interleaving.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
spin -a "$here/worker_lifecycle.pml"
gcc -O2 -w -DSAFETY -DVECTORSZ=4096 -o pan pan.c
./pan -m100000 > result.txt || true
cat result.txt | grep -E "errors:|states, stored|assertion|invalid end state|depth reached" || true
if ! grep -q "errors: 0" result.txt; then
    echo "spin found a violation:"; cat result.txt
    spin -t -p "$here/worker_lifecycle.pml" 2>/dev/null | tail -40 || true
    exit 1
fi
echo "worker lifecycle model: no stranding, stop terminates (spin, errors: 0)"
