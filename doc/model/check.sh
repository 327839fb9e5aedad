#!/usr/bin/env bash
# Model-checks the spin models here: assertions and invalid end states (a process stuck: stop
# not terminating, or a call stranded) over every interleaving.
#   worker_lifecycle.pml  - pool workers and the hand-off: no call stranded, no notify on a freed
#                           engine, set_limits shrinking before more work, stop runs the
#                           completions it posts to the pool, stop terminates; and each bug
#                           planted in it (-DBUG_...) must be found;
#   batched_delivery.pml  - results reaching an io_context caller: each handler invoked or
#                           destroyed exactly once, none stranded, also across the context's
#                           shutdown and handlers that throw.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
check_planted() { # model, bug: spin must find a violation with the bug planted
    spin -D"$2" -a "$here/$1.pml" > /dev/null
    gcc -O2 -w -DSAFETY -DVECTORSZ=4096 -o pan pan.c
    if ./pan -m100000 | grep -q "errors: 0"; then
        echo "spin found no violation in $1.pml with $2 planted: the model no longer checks it"
        exit 1
    fi
    echo "$1 model: planted $2 found"
}
for bug in BUG_NOTIFY_WITHOUT_REF BUG_TAKE_BEFORE_LEAVING BUG_LEAVE_WHILE_ABORTING BUG_RETIRE_IN_A_LATER_SECTION; do
    check_planted worker_lifecycle "$bug"
done
check_planted batched_delivery BUG_SHUTDOWN_IGNORES_SENDING
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
