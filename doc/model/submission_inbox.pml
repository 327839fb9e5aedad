/*
 * A model of asio_blocking's lock-free submission path, checked with spin by check.sh.
 *
 * It mirrors src/engine/coordinator.cpp, submission_inbox.hpp and worker_set.hpp:
 *   submitter(c) - coordinator::submit()'s fast path: while fast_submit_ is open, push call c
 *                  onto the inbox (one CAS; refused once the inbox is closed: then the locked
 *                  path), then read idle_hint and fast_submit_ again: a parked worker, or the
 *                  path closed meanwhile, means kick_inbox() (under the lock: collect the inbox,
 *                  hand calls to parked workers, start a thread if none is left, refresh);
 *   locked       - submit()'s locked path (a call with a lane, a timeout, a priority): under the
 *                  lock, collect the inbox first (earlier calls go first), refuse after stop or
 *                  join, else hand off to a parked worker or queue; start a thread if none is
 *                  left; refresh the fast path;
 *   worker(w)    - coordinator::worker_loop(): refresh the fast path, collect the inbox when the
 *                  queue is empty, take the next call; else park: park() publishes idle_hint,
 *                  then (the inner loop's top) collect_inbox_locked() checks the inbox, which may
 *                  hand a call to this very worker; wait for a hand-off or stop. After a call it
 *                  may first spin once (idle_spin: poll without the lock, then take the lock and
 *                  look again from the inner loop's top). A worker above
 *                  min_threads may time out: unpark, collect, go on if calls wait, else retire:
 *                  refresh (the last worker gone closes the path and collects) and start a
 *                  thread if calls wait with none left;
 *   closer       - refresh_fast_submit_locked() closing the path (the monitor's growth look
 *                  lapsing, a slow call finishing): store false, then collect what submitters
 *                  that saw it open pushed; then a look is scheduled again and the next refresh
 *                  reopens it;
 *   stopper      - stop() (take_all_waiting_locked: close the path, abort the queue, close the
 *                  inbox and abort what it held; wake parked workers), or join()
 *                  (close_inbox_locked: close the path, close the inbox and queue what it held;
 *                  wait until drained; then the workers leave), or neither (chosen by init).
 * One worker runs at the start (a later one starts if the first retires with calls waiting), with
 * the locked submitter; -DWORKERS=2 starts two and leaves the locked submitter out, so that each
 * configuration checks in seconds.
 * Each seq_cst operation on fast_submit_, idle_hint_ and the inbox's head is its own atomic
 * step, in the code's order; the engine's mutex is the variable mtx, so a submitter's push and
 * loads interleave with the steps of a critical section. State under the mutex changes in the
 * step of the atomic operation next to it, which no lock-free reader can tell apart. A take from
 * the inbox (a load of the head, then an exchange, under the lock so never racing another take)
 * is one step: pushes between the two are taken too. unpark_latest() hands to any parked worker,
 * not only the most recently parked (more interleavings, not fewer). A notify is an event, as on
 * a condition variable: it wakes a worker waiting then, and is lost on one that is not (spinning).
 *
 * Properties:
 *   - every call ends exactly once: it runs, is aborted by stop, or is refused (assertions at
 *     each end and in init's final check);
 *   - none stranded: init waits until every call has ended, so a call left in the inbox or the
 *     queue while the workers wait forever (or none is left to run it) is an invalid end state;
 *   - a push after the inbox closed is refused, and the locked path then refuses the call;
 *   - a worker waits only while the queue is empty; a hand-off goes to a parked worker only;
 *   - a notify lost on a spinning worker strands nothing.
 * Planted bugs (check.sh expects spin to find each): BUG_CHECK_BEFORE_PUSH (the submitter reads
 * idle_hint and fast_submit_ before pushing), BUG_PARK_WITHOUT_COLLECT (a parked worker waits
 * without checking the inbox), BUG_CLOSE_WITHOUT_COLLECT (refresh closes the path without
 * collecting), BUG_RELAXED_INBOX_CHECK (the worker's check of the inbox after parking is
 * satisfied before its store to idle_hint is visible: what a relaxed load of the head in
 * submission_inbox::take() would allow on a weakly ordered CPU, as the code had it at first; the
 * model is otherwise sequentially consistent, so the store-then-load pairs must be seq_cst on
 * both sides, as they now are), BUG_SPIN_THEN_WAIT (a worker waits after its spin without
 * looking again: the hand-off made while it spun was notified to no one).
 */
#ifndef WORKERS
#define WORKERS 1              /* at the start; 2: without the locked submitter, for speed */
#endif
#define SUBMITTERS 2           /* fast-path submitters: calls 0 .. SUBMITTERS-1 */
#define LOCKED_CALL SUBMITTERS /* the locked-path submitter's call */
#if WORKERS == 1
#define CALLS 3
#else
#define CALLS 2
#endif
#define SLOTS 2                /* worker records */
#define MIN_THREADS 0
#define TIMEOUTS 1             /* idle timeouts allowed in a run: bounds the state space */

#define MODE_NONE 0
#define MODE_STOP 1
#define MODE_JOIN 2

/* Lock-free, sequentially consistent. */
bool fast = true;     /* coordinator::fast_submit_ */
bool inbox[CALLS];    /* the inbox's stack, as a set */
bool inbox_closed;    /* head_ == closed() */
byte idle_hint;       /* worker_set::idle_hint_ */

/* Under the engine's mutex. */
bool mtx;
bool queue[CALLS];
byte queued;
bool parked[SLOTS];
byte idle;
byte handoff[SLOTS];  /* call + 1; 0: none */
bool in_wait[SLOTS];  /* in cv.wait(): a notify wakes it */
bool notified[SLOTS]; /* notified while waiting */
bool slot_used[SLOTS];
byte threads, starting;
byte timeouts;
bool look = true;     /* a growth look is scheduled (or the pool cannot grow) */
bool stopped;         /* pool_state::stopped (or joined) */
bool draining;        /* pool_state::draining: join() began */

/* Outcomes. */
byte ended[CALLS];
byte nended;
byte mode;

inline end_call(call) {
    ended[call]++;
    assert(ended[call] == 1);
    nended++
}

/* cv.notify_one() on worker wk's record: lost unless the worker waits. */
inline notify(wk) {
    if :: in_wait[wk] -> notified[wk] = true :: else -> skip fi
}

/* Any parked worker (unpark_latest() takes the most recently parked: one of these). */
inline pick_parked() {
    if
    :: parked[0] -> w2 = 0
    :: parked[1] -> w2 = 1
    fi
}

/* collect_inbox_locked(): take_all() moves the inbox to the queue (a load of the head, then an
   exchange: one step, pushes between the two are taken too; the load is sequentially consistent,
   see BUG_RELAXED_INBOX_CHECK), then
   enqueue_collected_locked() hands queued calls to parked workers (a parked worker exists only
   while the queue is empty), each unpark_latest() publishing idle_hint: they only lower it,
   which can only make a submitter kick needlessly, so they share the take's step. */
inline collect() {
    i = 0;
    do
    :: i < CALLS ->
        if :: inbox[i] -> inbox[i] = false; queue[i] = true; queued++ :: else -> skip fi;
        i++
    :: else -> break
    od;
    do
    :: queued > 0 && idle > 0 ->
        i = 0;
        do :: !queue[i] -> i++ :: else -> break od;
        pick_parked();
        assert(handoff[w2] == 0);
        queue[i] = false; queued--;
        parked[w2] = false; idle--; idle_hint = idle;
        handoff[w2] = i + 1;
        notify(w2)
    :: else -> break
    od;
    i = 0; w2 = 0
}

/* refresh_fast_submit_locked(), in two steps: the seq_cst store of fast_submit_ (open while
   running, with a thread staying and a growth look scheduled), then, if that closed it, the
   collect of what submitters that saw it open pushed. */
inline refresh_store() {
    if
    :: (!stopped && !draining && threads >= 1 && look) != fast -> fast = !fast; closing = !fast
    :: else -> skip
    fi
}
inline refresh_collect() {
#ifndef BUG_CLOSE_WITHOUT_COLLECT
    if :: closing -> collect() :: else -> skip fi;
#endif
    closing = false
}

/* plan_growth_locked(), reduced to what strands nothing: calls wait and no thread is left. */
inline plan_growth() {
    if
    :: !stopped && queued > 0 && threads + starting == 0 -> starting++; grow = true
    :: else -> skip
    fi
}

/* start_threads() after unlocking; the section that decided it counted the thread starting. */
inline start_thread() {
    if
    :: grow ->
        atomic {
            grow = false;
            if
            :: !slot_used[0] -> slot_used[0] = true; run worker(0)
            :: else -> assert(!slot_used[1]); slot_used[1] = true; run worker(1)
            fi
        }
    :: else -> skip
    fi
}

/* Each critical section begins with `!mtx -> mtx = true` in its first step and ends with
   `mtx = false` in its last: taking or dropping the lock commutes with every lock-free step. */

proctype worker(byte w)
{
    byte i, w2, op; /* op: the call to run + 1 */
    bool closing, grow, again, leave, early, spin_chance, spinning;
    atomic { !mtx -> mtx = true; starting--; threads++ };
top:
    atomic { refresh_store() };
    atomic {
        refresh_collect();
        if :: queued == 0 -> collect() :: else -> skip fi;
        if /* take_next_locked() */
        :: queued > 0 ->
            i = 0;
            do :: !queue[i] -> i++ :: else -> break od;
            queue[i] = false; queued--; op = i + 1; i = 0
        :: else -> skip
        fi
    };
    if
    :: op != 0 -> goto running
    :: op == 0 && stopped -> goto retire
    :: else -> skip
    fi;
#ifdef BUG_RELAXED_INBOX_CHECK
    /* take()'s relaxed load of the head, satisfied before park()'s store is visible: what a
       weakly ordered CPU (AArch64, POWER) may do with a relaxed load after a seq_cst store */
    atomic { i = 0; do :: i < CALLS && !inbox[i] -> i++ :: else -> break od; early = i < CALLS; i = 0 };
#endif
    atomic { parked[w] = true; idle++; idle_hint = idle }; /* park(): publish_idle() */
waiting:
    atomic {
#ifdef BUG_RELAXED_INBOX_CHECK
        if :: early -> collect() :: else -> skip fi; /* the exchange takes all; or nothing */
        early = true; /* later checks (after a wake-up) see the inbox */
#elif !defined(BUG_PARK_WITHOUT_COLLECT)
        collect(); /* parked, then the inbox is checked */
#endif
        if
        :: handoff[w] != 0 -> op = handoff[w]; handoff[w] = 0
        :: handoff[w] == 0 && stopped -> leave = true
        :: else ->
            assert(queued == 0); /* a worker waits only while the queue is empty */
            if
            :: spin_chance -> spinning = true /* idle_spin: polls without the lock */
            :: true -> in_wait[w] = true      /* cv.wait() releases the lock */
            fi;
            spin_chance = false;
            mtx = false
        fi
    };
    if
    :: op != 0 -> goto running
    :: leave -> leave = false; goto unparked
    :: spinning -> spinning = false; goto spun
    :: else -> skip
    fi;
end_wait:
    if
    :: atomic { notified[w] && !mtx -> mtx = true; notified[w] = false; in_wait[w] = false };
        goto waiting
    :: atomic { /* the idle timeout, above min_threads */
           handoff[w] == 0 && !stopped && !mtx && threads > MIN_THREADS && timeouts < TIMEOUTS ->
           mtx = true; timeouts++; in_wait[w] = false; notified[w] = false
       }
    fi;
unparked:
    atomic { parked[w] = false; idle--; idle_hint = idle }; /* unpark() */
    atomic { collect(); again = queued > 0 && !stopped };
    if
    :: again -> again = false; goto top
    :: else -> skip
    fi;
retire:
    atomic { threads--; slot_used[w] = false; refresh_store() }; /* retire(), then refresh */
    atomic {
        refresh_collect(); /* the last worker gone closes the path */
        plan_growth();     /* a retiring worker leaves nothing queued without a thread */
        mtx = false
    };
    start_thread();
    goto gone;
running:
    atomic { mtx = false; end_call(op - 1); op = 0 }; /* fn runs outside the lock */
    /* the result handed back: its caller may submit again, so the next wait may spin first */
    atomic { !mtx -> mtx = true; spin_chance = true };
    goto top;
spun: /* the poll ended (poked, or its limit): the lock again, then look again */
#ifdef BUG_SPIN_THEN_WAIT
    atomic { !mtx -> mtx = true; in_wait[w] = true; mtx = false };
    goto end_wait;
#else
    atomic { !mtx -> mtx = true };
    goto waiting;
#endif
gone:
    skip
}

inline kick_inbox() {
    atomic { !mtx -> mtx = true; collect() };
    atomic { plan_growth(); refresh_store() };
    atomic { refresh_collect(); mtx = false };
    start_thread()
}

/* submit()'s locked path for `call`. */
inline submit_locked(call) {
    atomic { !mtx -> mtx = true; collect() }; /* earlier calls go first */
    atomic {
        if
        :: stopped || draining -> end_call(call) /* refused */
        :: !stopped && !draining && idle > 0 -> /* place_admitted_locked(): hand off */
            pick_parked();
            assert(handoff[w2] == 0);
            parked[w2] = false; idle--; idle_hint = idle;
            handoff[w2] = call + 1;
            notify(w2);
            w2 = 0
        :: !stopped && !draining && idle == 0 -> queue[call] = true; queued++
        fi
    };
    atomic { plan_growth(); refresh_store() };
    atomic { refresh_collect(); mtx = false };
    start_thread()
}

proctype submitter(byte call)
{
    byte i, w2;
    bool closing, grow, pushed, parked_seen, open_seen;
    if
    :: fast -> /* the first seq_cst load of fast_submit_ */
#ifdef BUG_CHECK_BEFORE_PUSH
        parked_seen = idle_hint > 0;
        open_seen = fast;
#endif
        atomic { /* the CAS, refused once closed */
            if :: !inbox_closed -> inbox[call] = true; pushed = true :: else -> skip fi
        };
        if
        :: pushed ->
#ifndef BUG_CHECK_BEFORE_PUSH
            parked_seen = idle_hint > 0;
            open_seen = fast;
#endif
            if
            :: parked_seen || !open_seen -> kick_inbox()
            :: else -> skip
            fi;
            goto done
        :: else -> assert(stopped || draining) /* closed only by stop() or join() */
        fi
    :: else -> skip
    fi;
    submit_locked(call);
done:
    skip
}

proctype locked()
{
    byte i, w2;
    bool closing, grow;
    submit_locked(LOCKED_CALL)
}

proctype closer()
{
    byte i, w2;
    bool closing;
    atomic { !mtx -> mtx = true; look = false; refresh_store() }; /* the growth look lapsed */
    atomic { refresh_collect(); mtx = false };
    /* a look is scheduled again: this refresh (or a later one) reopens the path */
    atomic { !mtx -> mtx = true; look = true; refresh_store() };
    atomic { refresh_collect(); mtx = false }
}

proctype stopper()
{
    byte i, w2;
    if
    :: mode == MODE_STOP -> /* stop(): take_all_waiting_locked() */
        atomic { !mtx -> mtx = true; stopped = true; fast = false };
        atomic {
            i = 0; /* the queue's calls are aborted */
            do
            :: i < CALLS -> if :: queue[i] -> queue[i] = false; queued--; end_call(i) :: else -> skip fi; i++
            :: else -> break
            od;
            inbox_closed = true; /* inbox_.close(): its calls are aborted too */
            i = 0;
            do
            :: i < CALLS -> if :: inbox[i] -> inbox[i] = false; end_call(i) :: else -> skip fi; i++
            :: else -> break
            od;
            notify(0); notify(1); /* wake_all_parked() */
            i = 0;
            mtx = false
        }
    :: mode == MODE_JOIN -> /* join(): close_inbox_locked() */
        atomic { !mtx -> mtx = true; draining = true; fast = false };
        atomic {
            inbox_closed = true; /* inbox_.close(): its calls are queued */
            collect();
            mtx = false
        };
        nended == CALLS; /* drained */
        atomic { !mtx -> mtx = true; stopped = true; notify(0); notify(1); mtx = false } /* joined: the workers leave */
    fi
}

init
{
    byte i;
    atomic {
        if
        :: mode = MODE_NONE
        :: mode = MODE_STOP
        :: mode = MODE_JOIN
        fi;
        starting = WORKERS;
        slot_used[0] = true; run worker(0);
#if WORKERS == 2
        slot_used[1] = true; run worker(1);
#else
        run locked();
#endif
        run submitter(0); run submitter(1); run closer();
        if :: mode != MODE_NONE -> run stopper() :: else -> skip fi
    };
    nended == CALLS; /* every call ended: none stranded */
    if
    :: mode != MODE_NONE ->
        _nr_pr == 1; /* every worker gone */
        assert(queued == 0 && threads == 0 && starting == 0 && idle == 0);
        i = 0;
        do :: i < CALLS -> assert(!inbox[i]); i++ :: else -> break od
    :: else -> skip
    fi;
    i = 0;
    do :: i < CALLS -> assert(ended[i] == 1); i++ :: else -> break od
}
