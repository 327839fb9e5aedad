/*
 * A model of asio_blocking's worker lifecycle, checked with spin by check.sh (and in CI).
 *
 * It mirrors src/pool_core.cpp:
 *   client   - pool_core::submit(): refuse after stop, hand off to an idle worker
 *              (hand_off_locked), or enqueue and maybe start a thread (should_start_thread_locked);
 *   spawn    - pool_core::start_threads(), including a thread start that fails: with no worker
 *              left, waiting jobs fail instead of being stranded;
 *   worker   - pool_core::worker_loop(): take the next job, else go idle and wait (condition
 *              variable with timeout), then run a handed-off job, or retire on stop / timeout
 *              (retire_locked), in the same critical section as the decision;
 *   stopper  - pool_core::stop(): refuse new work, abort what waits, wake idle workers;
 *   init     - pool_core::join_threads(): wait for every thread to leave.
 * Every atomic block is one critical section under pool_core::mutex_. A timed wait is a
 * nondeterministic choice between being handed a job, seeing stop, and timing out.
 *
 * Properties:
 *   - no accepted job is left in the queue with zero workers alive or starting (the assertion in
 *     the monitor process, checked in every reachable state);
 *   - stop terminates: every process reaches its end (no invalid end state: init's join waits
 *     for all threads to leave and every job to end, done or aborted).
 */
#define MAX_THREADS 2
#define MIN_THREADS 0
#define JOBS 3

byte queued, threads, starting, idle, done, aborted, start_failures;
bool stopped;
bool idle_slot[MAX_THREADS]; /* worker is in the idle stack */
bool handoff[MAX_THREADS];   /* a job was handed to this idle worker */
bool slot_used[MAX_THREADS]; /* worker record in use */

proctype worker(byte id)
{
    bool have = false;
    bool leave = false;
    atomic { starting--; threads++ };
top:
    atomic {
        if
        :: queued > 0 -> queued--; have = true
        :: else ->
            if
            :: stopped || threads > MAX_THREADS -> threads--; slot_used[id] = false; leave = true
            :: else -> idle_slot[id] = true; idle++
            fi
        fi
    };
    if
    :: leave -> goto finish
    :: have -> goto work
    :: else -> skip
    fi;
    /* idle wait */
    atomic {
        if
        :: handoff[id] -> handoff[id] = false; have = true
        :: !handoff[id] && stopped ->
            idle_slot[id] = false; idle--; threads--; slot_used[id] = false; leave = true
        :: !handoff[id] && threads > MIN_THREADS -> /* idle timeout */
            assert(queued == 0); /* idle workers exist only while the queue is empty */
            idle_slot[id] = false; idle--; threads--; slot_used[id] = false; leave = true
        fi
    };
    if
    :: leave -> goto finish
    :: else -> skip
    fi;
work:
    atomic { done++; have = false }; /* fn runs outside the lock; counted in finish_locked */
    goto top;
finish:
    skip
}

inline spawn()
{
    atomic {
        if
        :: true -> /* the thread starts */
            if
            :: !slot_used[0] -> slot_used[0] = true; run worker(0)
            :: else -> assert(!slot_used[1]); slot_used[1] = true; run worker(1)
            fi
        :: start_failures < 1 -> /* pthread_create fails */
            start_failures++; starting--;
            if
            :: threads == 0 && starting == 0 -> aborted = aborted + queued; queued = 0
            :: else -> skip
            fi
        fi
    }
}

proctype client()
{
    byte i = 0;
    bool grow;
    do
    :: i < JOBS ->
        grow = false;
        atomic {
            if
            :: stopped -> aborted++
            :: !stopped && idle_slot[0] -> idle_slot[0] = false; idle--; handoff[0] = true
            :: !stopped && idle_slot[1] -> idle_slot[1] = false; idle--; handoff[1] = true
            :: !stopped && idle == 0 ->
                queued++;
                if
                :: threads + starting < MAX_THREADS && starting == 0 && threads == 0 ->
                    starting++; grow = true /* no worker at all: must start one */
                :: threads + starting < MAX_THREADS && starting == 0 && threads > 0 ->
                    starting++; grow = true /* blocking calls: grow on backlog */
                :: threads > 0 || starting > 0 -> skip /* fast calls: leave it to the workers */
                :: threads + starting >= MAX_THREADS -> skip
                fi
            fi;
            i++
        };
        if
        :: grow -> spawn()
        :: else -> skip
        fi
    :: else -> break
    od
}

proctype stopper()
{
    atomic { stopped = true; aborted = aborted + queued; queued = 0 }
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
    atomic { run monitor(); run client(); run stopper() };
    /* join_threads(): all threads gone and every job ended */
    (threads == 0 && starting == 0 && done + aborted == JOBS && _nr_pr == 2);
    assert(queued == 0 && idle == 0)
}
