/*
 * A model of asio_blocking's worker lifecycle and hand-off, checked with spin by check.sh.
 *
 * It mirrors src/engine/coordinator.cpp (and worker_set.cpp):
 *   client   - coordinator::submit(): refuse after stop; hand off to the most recently parked
 *              worker (place_admitted_locked), holding a reference to the engine across the
 *              notify made after unlocking; or queue and maybe start a thread (decide_growth:
 *              always with no thread at all; one more for blocking calls while none is starting);
 *   spawn    - coordinator::start_threads(), including a start that fails: with no worker left,
 *              waiting calls fail instead of being stranded. The thread's reference to the
 *              engine is taken in the critical section that decided to start it;
 *   worker   - coordinator::worker_loop(): leave first if there are more threads than
 *              max_threads (set_limits shrinking takes effect before taking more work); take the
 *              next call; else park (LIFO) and wait, with a timeout only above min_threads; then
 *              run a handed-off call, or retire on stop / timeout / being told to leave, in the
 *              same critical section as the decision. A retired thread runs its exit hook
 *              uncounted (departing), then drops its reference to the engine;
 *   stopper  - coordinator::stop() + the pool's destructor on a pool thread (no join): refuse new
 *              work, take what waits, and, while `aborting`, post each aborted call's completion
 *              to the pool itself (a handler bound to the pool), which workers stay to run; then
 *              drop the pool's reference;
 *   limiter  - coordinator::set_limits(0, 1): parked workers beyond the new maximum leave the
 *              idle stack and are told to leave.
 * Every atomic block is one critical section under coordinator::mutex_. A timed wait is a
 * nondeterministic choice between being handed a call, seeing stop, being told to leave and
 * timing out. The spin a parked worker may make before waiting (idle_spin: it leaves the lock,
 * polls, takes the lock and looks again) is modelled in submission_inbox.pml, with notifies as
 * events: here a wait wakes on what it waits for.
 *
 * Properties:
 *   - no accepted call is left queued with zero workers alive or starting (monitor process);
 *   - never more calls running than max_threads once set_limits has shrunk it (worker);
 *   - no notify touches a freed engine (client);
 *   - stop runs the completions it posts to the pool while a worker was alive when it began
 *     (final check);
 *   - stop terminates: every process ends (no invalid end state).
 * Planted bugs (check.sh expects spin to find each): BUG_NOTIFY_WITHOUT_REF,
 * BUG_TAKE_BEFORE_LEAVING, BUG_LEAVE_WHILE_ABORTING, BUG_RETIRE_IN_A_LATER_SECTION.
 */
#define MIN_THREADS 0
#define JOBS 3

byte max_threads = 2;
byte queued, threads, starting, idle, busy, leaving, departing, done, aborted, start_failures;
byte completions_posted, completions_dropped;
bool stopped, shrunk, thread_at_stop;
byte aborting;
byte refs = 1; /* the pool's reference */
bool freed;
bool idle_slot[2]; /* parked: in the idle stack */
bool handoff[2];   /* a call was handed to this parked worker */
bool exit_req[2];  /* told to leave by set_limits */
bool slot_used[2]; /* worker record in use */

inline release_ref() {
    atomic { assert(!freed); refs--; if :: refs == 0 -> freed = true :: else -> skip fi }
}

/* A retiring worker leaves nothing queued without a thread: in the section that retires it,
   it starts one (for completions posted after stop, too). */
inline replace_if_stranded() {
    if
    :: queued > 0 && threads + starting == 0 ->
        starting++; refs++;
        if
        :: !slot_used[0] -> slot_used[0] = true; run worker(0)
        :: else -> assert(!slot_used[1]); slot_used[1] = true; run worker(1)
        fi
    :: else -> skip
    fi
}

proctype worker(byte id)
{
    bool have = false;
    bool leave = false;
    atomic { starting--; threads++ };
top:
    atomic {
        if
#ifndef BUG_TAKE_BEFORE_LEAVING
        :: threads - leaving > max_threads -> leave = true
#endif
        :: else ->
            if
            :: queued > 0 ->
                queued--; busy++; have = true;
                assert(!shrunk || busy <= max_threads)
            :: else ->
                if
#ifdef BUG_LEAVE_WHILE_ABORTING
                :: stopped -> leave = true
#else
                :: stopped && aborting == 0 -> leave = true
#endif
                :: else -> idle_slot[id] = true; idle++
                fi
            fi
        fi;
#ifndef BUG_RETIRE_IN_A_LATER_SECTION
        if
        :: leave -> threads--; departing++; slot_used[id] = false; replace_if_stranded()
        :: else -> skip
        fi
#endif
    };
    if
    :: leave -> goto retire
    :: have -> goto work
    :: else -> skip
    fi;
    /* parked: the wait */
    atomic {
        if
        :: handoff[id] -> handoff[id] = false; have = true
        :: !handoff[id] && exit_req[id] -> leave = true /* already out of the idle stack */
        :: !handoff[id] && !exit_req[id] && stopped && aborting == 0 ->
            idle_slot[id] = false; idle--; leave = true
        :: !handoff[id] && !exit_req[id] && !stopped && threads - leaving > MIN_THREADS -> /* timeout */
            assert(queued == 0); /* parked workers exist only while the queue is empty */
            idle_slot[id] = false; idle--; leave = true
        fi;
#ifndef BUG_RETIRE_IN_A_LATER_SECTION
        if
        :: leave -> threads--; departing++; slot_used[id] = false;
            if :: exit_req[id] -> exit_req[id] = false; leaving-- :: else -> skip fi;
            replace_if_stranded()
        :: else -> skip
        fi
#endif
    };
    if
    :: leave -> goto retire
    :: else -> skip
    fi;
work:
    atomic { busy--; done++; have = false }; /* fn runs outside the lock */
    goto top;
retire:
#ifdef BUG_RETIRE_IN_A_LATER_SECTION
    atomic { threads--; departing++; slot_used[id] = false;
             if :: exit_req[id] -> exit_req[id] = false; leaving-- :: else -> skip fi;
             replace_if_stranded() };
#endif
    atomic { departing-- }; /* after the exit hook */
    release_ref()           /* the thread's reference: its last touch of the engine */
}

inline spawn()
{
    atomic {
        if
        :: true -> /* the thread starts, with the reference taken for it */
            if
            :: !slot_used[0] -> slot_used[0] = true; run worker(0)
            :: else -> assert(!slot_used[1]); slot_used[1] = true; run worker(1)
            fi
        :: start_failures < 1 -> /* pthread_create fails */
            start_failures++; starting--;
            if
            :: threads == 0 && starting == 0 -> aborted = aborted + queued; queued = 0
            :: else -> skip
            fi;
            assert(!freed); refs--; /* the reference taken for the thread */
            if :: refs == 0 -> freed = true :: else -> skip fi
        fi
    }
}

proctype client()
{
    byte i = 0;
    bool grow;
    bool notify;
    do
    :: i < JOBS ->
        grow = false;
        notify = false;
        atomic {
            if
            :: stopped -> aborted++
            :: !stopped && idle_slot[1] -> /* LIFO: the most recently parked */
                idle_slot[1] = false; idle--; handoff[1] = true; busy++; notify = true
            :: !stopped && idle_slot[0] && !idle_slot[1] ->
                idle_slot[0] = false; idle--; handoff[0] = true; busy++; notify = true
            :: !stopped && idle == 0 ->
                queued++;
                if
                /* workers told to leave count as gone */
                :: threads - leaving + starting == 0 -> starting++; grow = true
                :: threads - leaving + starting > 0 && threads - leaving + starting < max_threads &&
                   starting == 0 && busy >= threads - leaving -> starting++; grow = true /* blocking */
                :: threads - leaving + starting > 0 -> skip /* tiny calls: the workers there are */
                fi
            fi;
#ifndef BUG_NOTIFY_WITHOUT_REF
            if :: notify -> refs++ :: else -> skip fi;
#endif
            /* A thread to start gets its reference now, in the section that decided it: once
               unlocked, the last other reference may go at any moment. */
            if :: grow -> refs++ :: else -> skip fi;
            i++
        };
        if
        :: notify -> /* cv.notify_one() after unlocking */
            assert(!freed);
#ifndef BUG_NOTIFY_WITHOUT_REF
            release_ref()
#endif
        :: else -> skip
        fi;
        if
        :: grow -> spawn()
        :: else -> skip
        fi
    :: else -> break
    od
}

proctype stopper()
{
    byte n;
    atomic {
        stopped = true; thread_at_stop = threads - leaving > 0; aborting++;
        n = queued; aborted = aborted + queued; queued = 0
    };
    /* Each aborted call's completion is posted to the pool itself, outside the lock. */
    do
    :: n > 0 ->
        atomic {
            if
            :: threads - leaving + starting > 0 -> /* submit() of a completion: hand-off or queue */
                completions_posted++;
                if
                :: idle_slot[1] -> idle_slot[1] = false; idle--; handoff[1] = true; busy++
                :: idle_slot[0] && !idle_slot[1] -> idle_slot[0] = false; idle--; handoff[0] = true; busy++
                :: idle == 0 -> queued++
                fi
            :: else -> completions_dropped++
            fi;
            n--
        }
    :: else -> break
    od;
    atomic { aborting-- };
    release_ref() /* the pool object is gone; threads finish on their own */
}

proctype limiter()
{
    atomic {
        max_threads = 1; shrunk = true;
        /* oldest-parked first: out of the idle stack, told to leave */
        if
        :: threads - leaving > 1 && idle_slot[0] -> idle_slot[0] = false; idle--; exit_req[0] = true; leaving++
        :: else -> skip
        fi;
        if
        :: threads - leaving > 1 && idle_slot[1] -> idle_slot[1] = false; idle--; exit_req[1] = true; leaving++
        :: else -> skip
        fi
    }
}

proctype monitor()
{
    /* The invariant, checked in every state the other processes reach. */
end:
    do
    :: atomic { !(queued == 0 || threads + starting > 0) -> assert(false) }
    od
}

init
{
    atomic { run monitor(); run client(); run stopper(); run limiter() };
    /* every thread gone, every reference dropped */
    (freed && _nr_pr == 2);
    assert(queued == 0 && idle == 0 && threads == 0 && departing == 0 && starting == 0);
    assert(done + aborted == JOBS + completions_posted);
    assert(completions_dropped == 0 || !thread_at_stop)
}
