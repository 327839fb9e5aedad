#!/usr/bin/env bash
# Model-checks the spin models here: assertions and invalid end states (a process stuck: stop
# not terminating, or a call stranded) over every interleaving.
#   worker_lifecycle.pml  - pool workers and the hand-off: no call stranded, no notify on a freed
#                           engine, set_limits shrinking before more work, stop runs the
#                           completions it posts to the pool, stop terminates; and each bug
#                           planted in it (-DBUG_...) must be found;
#   batched_delivery.pml  - results reaching an io_context caller: each handler invoked or
#                           destroyed exactly once, none stranded, also across the context's
#                           shutdown and handlers that throw, no batch posted to a destroyed
#                           context, and run() not returning while a call is pending (each bug
#                           planted in it must be found);
#   submission_inbox.pml  - the lock-free submission path (inbox, fast_submit_, idle_hint) with
#                           parking (and spinning) workers, the path closing and reopening, stop and join: each
#                           call ends exactly once, none stranded in the inbox or the queue, a
#                           push after close refused; with one worker and the locked path, and
#                           with two workers (-DWORKERS=2); and each bug planted in it must be
#                           found;
#   courier.pml           - lowered workers handing io_context batches to the courier: each
#                           batch posted exactly once, none stranded, the courier ends, with
#                           stop() after the workers (join) or concurrent with them (-DSTOP_EARLY,
#                           the detach path); and each bug planted in it must be found.
# pan.c is compiled with -O0: for these state spaces compiling it optimised takes longer than
# the search it would speed up.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
check_planted() { # model bug [spin options]: spin must find a violation with the bug planted
    local model="$1" bug="$2"
    shift 2
    spin -D"$bug" "$@" -a "$here/$model.pml" > /dev/null
    gcc -O0 -w -DSAFETY -DVECTORSZ=4096 -o pan pan.c
    if ./pan -m100000 | grep -q "errors: 0"; then
        echo "spin found no violation in $model.pml with $bug planted: the model no longer checks it"
        exit 1
    fi
    echo "$model model: planted $bug found${*:+ ($*)}"
}
check_model() { # model [spin options]: spin must find no violation
    local model="$1"
    shift
    spin "$@" -a "$here/$model.pml"
    gcc -O0 -w -DSAFETY -DVECTORSZ=4096 -o pan pan.c
    ./pan -m100000 > result.txt || true
    grep -E "errors:|states, stored|assertion|invalid end state|depth reached" result.txt || true
    if ! grep -q "errors: 0" result.txt; then
        echo "spin found a violation in $model.pml $*:"
        cat result.txt
        spin -t -p "$@" "$here/$model.pml" 2>/dev/null | tail -40 || true
        exit 1
    fi
    echo "$model model${*:+ ($*)}: no violation (spin, errors: 0)"
}
for bug in BUG_NOTIFY_WITHOUT_REF BUG_TAKE_BEFORE_LEAVING BUG_LEAVE_WHILE_ABORTING BUG_RETIRE_IN_A_LATER_SECTION; do
    check_planted worker_lifecycle "$bug"
done
check_planted batched_delivery BUG_SHUTDOWN_IGNORES_SENDING
check_planted batched_delivery BUG_RELEASE_BEFORE_POST
check_planted batched_delivery BUG_HOLD_LOAD_THEN_CLEAR
check_planted batched_delivery BUG_IDLE_KEEPS_HOLD
check_planted batched_delivery BUG_HOLD_AFTER_LOOK
for bug in BUG_CHECK_BEFORE_PUSH BUG_PARK_WITHOUT_COLLECT BUG_CLOSE_WITHOUT_COLLECT BUG_RELAXED_INBOX_CHECK BUG_SPIN_THEN_WAIT; do
    check_planted submission_inbox "$bug"
done
for bug in BUG_SIGNAL_BEFORE_PUSH BUG_READ_SIGNAL_AFTER_LOOK; do
    check_planted courier "$bug"
done
check_planted courier BUG_CLOSE_WHEN_NOT_EMPTY -DSTOP_EARLY
check_model worker_lifecycle
check_model batched_delivery
check_model submission_inbox
check_model submission_inbox -DWORKERS=2
check_model courier
check_model courier -DSTOP_EARLY
