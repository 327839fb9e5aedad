/*
 * A model of the pool's courier hand-over, checked with spin by check.sh.
 *
 * It mirrors src/engine/courier.cpp (and coordinator.cpp's start/stop of it):
 *   worker(w) - courier::hand_over(): one CAS pushes batch w onto the stack unless the stack is
 *               closed (then the worker posts the batch itself); a push onto an empty stack then
 *               bumps `signal_` (the futex word) and wakes the courier;
 *   courier   - courier::run(): read `signal_`, then take the whole stack unless it is empty or
 *               closed (a CAS) and post what it took; else, once stopping, close the stack if it
 *               is still empty (a CAS) and end, or go round again; else wait until `signal_`
 *               differs from the value read (futex wait: no lost wake-up if it changed since);
 *   init      - start() (or a thread start that failed: the stack stays closed), the workers,
 *               then stop() (stopping_, then a bump of `signal_`); with -DSTOP_EARLY stop() runs
 *               concurrently with the workers (the detach path: shutdown on a pool thread while
 *               detached workers still deliver), else after every batch was posted (join(), once
 *               the workers have exited).
 * The stack is a bit set (a take-all takes every pushed batch, which is all the model needs of
 * its order); every atomic of the code is one step, sequentially consistent as in the code.
 *
 * Properties:
 *   - every batch is posted exactly once, by the courier or by its worker (assertion);
 *   - none stranded and the courier ends: init waits until every batch is posted and the
 *     courier has ended, so a batch left on the stack, or a courier asleep with one there that
 *     nothing will wake, or a stop the courier misses, is an invalid end state.
 * Planted bugs (check.sh expects spin to find each): BUG_SIGNAL_BEFORE_PUSH (the worker bumps
 * `signal_` before its push), BUG_READ_SIGNAL_AFTER_LOOK (the courier reads `signal_` after
 * looking at the stack), BUG_CLOSE_WHEN_NOT_EMPTY (stop closes the stack without checking it is
 * empty; found with -DSTOP_EARLY).
 */
#define WORKERS 2

byte stack = 0;      /* bit w: batch w is on the stack */
bool closed = true;  /* before start(), and once the courier has ended */
byte signal = 0;     /* the futex word; wraps */
bool stopping = false;
byte posted[WORKERS];
byte workers_done = 0;
bool courier_done = false;

inline post(w) {
    assert(posted[w] == 0);
    posted[w]++
}

proctype worker(byte w) {
    bool pushed = false;
    bool was_empty = false;
#ifdef BUG_SIGNAL_BEFORE_PUSH
    signal = (signal + 1) % 4;
#endif
    atomic {
        if
        :: closed -> skip
        :: else -> was_empty = (stack == 0); stack = stack | (1 << w); pushed = true
        fi
    }
    if
    :: !pushed -> post(w)    /* refused: the worker posts its batch itself */
    :: pushed && was_empty ->
#ifndef BUG_SIGNAL_BEFORE_PUSH
        signal = (signal + 1) % 4
#else
        skip
#endif
    :: pushed && !was_empty -> skip
    fi;
    workers_done++
}

proctype courier() {
    byte seen;
    byte taken;
    byte w;
loop:
#ifndef BUG_READ_SIGNAL_AFTER_LOOK
    seen = signal;
#endif
    atomic {
        if
        :: !closed && stack != 0 -> taken = stack; stack = 0
        :: else -> taken = 0
        fi
    }
#ifdef BUG_READ_SIGNAL_AFTER_LOOK
    seen = signal;
#endif
    if
    :: taken != 0 ->
        w = 0;
        do
        :: w < WORKERS ->
            if
            :: taken & (1 << w) -> post(w)
            :: else -> skip
            fi;
            w++
        :: else -> break
        od;
        goto loop
    :: else -> skip
    fi;
    if
    :: stopping ->
        atomic {
#ifndef BUG_CLOSE_WHEN_NOT_EMPTY
            if
            :: stack == 0 -> closed = true; goto done
            :: else -> skip
            fi
#else
            closed = true; goto done
#endif
        };
        goto loop
    :: else ->
        (signal != seen);    /* the futex wait */
        goto loop
    fi;
done:
    courier_done = true
}

init {
    byte w;
    bool started = false;
    if
    :: run courier(); closed = false; started = true  /* the thread runs before the stack opens */
    :: skip                                           /* the thread could not start */
    fi;
    atomic {
        w = 0;
        do
        :: w < WORKERS -> run worker(w); w++
        :: else -> break
        od
    }
#ifdef STOP_EARLY
    stopping = true;
    signal = (signal + 1) % 4;
#endif
    (workers_done == WORKERS);
    w = 0;
    do
    :: w < WORKERS -> (posted[w] == 1); w++   /* blocks forever if a batch is stranded */
    :: else -> break
    od;
#ifndef STOP_EARLY
    stopping = true;
    signal = (signal + 1) % 4;
#endif
    (!started || courier_done)
}
