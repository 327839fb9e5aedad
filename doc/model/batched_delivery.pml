/*
 * A model of how finished calls reach an io_context caller (src/caller_registry.cpp,
 * caller_registry), checked with spin by check.sh (and in CI).
 *
 *   finisher(i) - a worker completing call i: try_claim(), then deliver_batched(): under the
 *                 registry lock, unlink from the registry, append to the ready list (still
 *                 counted as a call whose work the registry keeps), and, unless a batch is
 *                 pending, mark one pending and count itself as sending; then, outside the lock,
 *                 post the batch and stop counting itself as sending. Or, while calls are tiny,
 *                 hold the post (src/engine/held_batches.hpp, still counted as sending): its
 *                 worker posts it after a few more deliveries or before it goes idle, and the
 *                 monitor if the worker's next call runs long; each takes the slot with one
 *                 exchange and posts only what it took. The monitor counts its look before it
 *                 reads the slot, and a worker that finds a look counted since its call started
 *                 takes its hold back and posts it (the monitor may have looked before the hold
 *                 and will not come back during the call);
 *   loop        - the io_context running: a queued batch runs run_batch(): under the lock take
 *                 the ready list, clear "posted" and stop counting the batch's calls as kept,
 *                 giving back the registry's work (outside the lock) if none is left; then
 *                 invoke each handler outside the lock. A handler may throw: the rest of the
 *                 batch goes back to the front of the ready list, counted as kept again (a batch
 *                 is marked pending, and posted after the lock, if none is) and run() returns;
 *                 the program may then run again, or stop and destroy the context. run() also
 *                 returns whenever the context has no outstanding work: no batch queued or
 *                 running, and no work held by the registry (which holds one count while any
 *                 call it keeps is registered or ready: every call here is an io_context
 *                 handler's, whose work the registry keeps);
 *   shutdown    - the context being destroyed (only once run() has returned): caller_registry's
 *                 shutdown claims every registered call, waits for calls claimed elsewhere to
 *                 leave the registry and for every sending finisher to finish its post, takes
 *                 the ready list, and destroys those handlers. The scheduler then destroys the
 *                 queued batches without running them.
 * Every atomic block is one critical section under caller_registry::mutex_.
 *
 * Properties:
 *   - every call ends exactly once: its handler is invoked or destroyed, never both, never
 *     twice (assertions at each end and in the final check);
 *   - no batch is posted to a destroyed context (a finisher posts outside the lock; shutdown
 *     waits for it; check.sh plants BUG_SHUTDOWN_IGNORES_SENDING and expects spin to find it);
 *   - nothing is stranded: a program that never stops its loop ends with every handler invoked
 *     (otherwise the loop blocks and spin reports an invalid end state), and its run() does not
 *     return for lack of work while a call is pending (check.sh plants
 *     BUG_RELEASE_BEFORE_POST: a finisher giving back the registry's work before its batch is
 *     posted, and expects spin to find it);
 *   - a held post is made exactly once (check.sh plants BUG_HOLD_LOAD_THEN_CLEAR: the slot read,
 *     then cleared, so worker and monitor may both post) and is never stranded (check.sh plants
 *     BUG_IDLE_KEEPS_HOLD: a worker that goes idle leaves its held post to the monitor, which
 *     looks only if a call runs long), nor left held through a long call once the monitor has
 *     looked (check.sh plants BUG_HOLD_AFTER_LOOK: the worker ignores a look counted before
 *     its hold).
 */
#define N 3

bool claimed[N];    /* try_claim() succeeded (worker or shutdown) */
bool registered[N]; /* in the registry (head_ list) */
bool ready[N];      /* in the ready list */
byte order[N];      /* ready list, oldest first */
byte nready;
bool posted;        /* a batch is pending: posted, or about to be (batch_posted_) */
byte queued;        /* batches queued on the io_context */
byte sending;       /* finishers between marking a batch pending and the end of its post */
byte invoked[N], destroyed[N];
byte ended;
byte kept;       /* calls whose work the registry keeps: registered or ready (kept_calls_) */
byte ready_kept; /* of those, the ready ones (ready_kept_) */
bool held;       /* the registry holds one count of the context's work (work_held_) */
bool loop_done, shutdown_done;
bool hold[N]; /* call i's worker holds its batch's post (a held_batches slot) */
bool counted[N]; /* the monitor has counted a look since call i's worker started its next call
                  * (monitor_looks_ moved on since held_batches::call_started) */
bool looked[N];  /* ... and has finished looking */
bool stops; /* chosen at the start: does the program stop the loop early? */

inline append_ready(i) {
    order[nready] = i; nready++; ready[i] = true
}

/* held_batches::take_due/take_any: one exchange; the taker posts what it took (`took` is the
 * caller's). */
inline take_and_post(i) {
#ifdef BUG_HOLD_LOAD_THEN_CLEAR
    took = hold[i];
    hold[i] = false;
#else
    atomic { took = hold[i]; hold[i] = false };
#endif
    if
    :: took -> atomic { assert(!shutdown_done && sending > 0); queued++; sending-- }
    :: else -> skip
    fi
}

/* The monitor during the worker's next call: looks (it must if the call runs long, then does
 * not come back during it), counting the look before it takes the worker's held posts (one
 * step here: the worker's hold and its check of the count are two). */
proctype monitor(byte i; bool long_call)
{
    bool took = false;
    atomic {
        if
        :: true -> counted[i] = true; take_and_post(i)
        :: !long_call -> skip
        fi;
        looked[i] = true
    }
}

proctype finisher(byte i)
{
    bool mine = false;
    bool took = false;
    atomic { if :: !claimed[i] -> claimed[i] = true; mine = true :: else -> skip fi };
    if
    :: mine ->
        bool post = false;
        atomic {
            registered[i] = false;
            append_ready(i);
#ifdef BUG_RELEASE_BEFORE_POST
            kept--;
            if :: kept == 0 -> held = false :: else -> skip fi;
#else
            ready_kept++;
#endif
            if :: !posted -> posted = true; post = true; sending++ :: else -> skip fi
        };
        if
        :: post -> /* the post, outside the registry lock: never into a destroyed context */
            atomic { assert(!shutdown_done); queued++; sending-- }
        :: post -> /* held: the worker runs more calls, then posts it when due or going idle */
            bool long_call;
            atomic {
                if :: long_call = true :: long_call = false fi;
                run monitor(i, long_call) /* the next call has started */
            };
            hold[i] = true;
#ifndef BUG_HOLD_AFTER_LOOK
            if :: counted[i] -> take_and_post(i) :: else -> skip fi;
#endif
            if
            :: long_call -> looked[i]; assert(!hold[i]) /* nothing posts it until the call ends */
            :: else -> skip
            fi;
#ifdef BUG_IDLE_KEEPS_HOLD
            if :: true -> take_and_post(i) :: true -> skip fi
#else
            take_and_post(i)
#endif
        :: else -> skip
        fi
    :: else -> skip /* the context's shutdown claimed it first */
    fi
}

proctype loop()
{
    byte batch[N];
    byte n, k, j;
    bool threw, repost, release;
    do
    :: atomic { queued > 0 -> queued-- }; /* the scheduler takes a batch off its queue */
       atomic {
           n = 0;
           do
           :: n < nready -> batch[n] = order[n]; ready[order[n]] = false; n++
           :: else -> break
           od;
           nready = 0;
           posted = false;
           kept = kept - ready_kept;
           ready_kept = 0;
           release = (kept == 0 && held)
       };
       /* given back outside the lock; the running batch is work until it returns */
       if :: release -> held = false; release = false :: else -> skip fi;
       k = 0;
       threw = false;
       do
       :: k < n && !threw ->
           atomic {
               assert(!ready[batch[k]] && claimed[batch[k]]);
               invoked[batch[k]]++;
               assert(invoked[batch[k]] == 1 && destroyed[batch[k]] == 0);
               ended++;
               k++
           };
           if
           :: k < n -> threw = true /* this handler threw: the rest go back first */
           :: true -> skip
           fi
       :: k < n && threw ->
           atomic {
               /* prepend batch[k..n) to the ready list */
               j = nready;
               do
               :: j > 0 -> order[j - 1 + n - k] = order[j - 1]; j--
               :: else -> break
               od;
               j = k;
               do
               :: j < n -> order[j - k] = batch[j]; ready[batch[j]] = true; j++
               :: else -> break
               od;
               nready = nready + n - k;
               if :: kept == 0 -> held = true :: else -> skip fi; /* takes the work again */
               kept = kept + n - k;
               ready_kept = ready_kept + n - k;
               repost = !posted;
               posted = true;
               k = n
           };
           if :: repost -> queued++ :: else -> skip fi /* its post, outside the lock */
       :: else -> break
       od
    :: atomic { queued == 0 && !held -> assert(stops || ended == N) }; break /* no work left: run() returns */
    :: stops -> break /* the program stops the loop (between handlers) and destroys the context */
    od;
    loop_done = true
}

proctype shutdown()
{
    byte i;
    loop_done; /* a context is destroyed only once run() has returned */
    atomic {
        i = 0;
        do
        :: i < N ->
            if
            :: registered[i] && !claimed[i] -> claimed[i] = true; registered[i] = false;
               destroyed[i]++; ended++; kept--
            :: else -> skip
            fi;
            i++
        :: else -> break
        od
    };
    /* calls claimed by a worker leave the registry before shutdown goes on */
    atomic {
#ifdef BUG_SHUTDOWN_IGNORES_SENDING
        (!registered[0] && !registered[1] && !registered[2]) ->
#else
        (!registered[0] && !registered[1] && !registered[2] && sending == 0) ->
#endif
        i = 0;
        do
        :: i < nready -> ready[order[i]] = false; destroyed[order[i]]++; ended++; i++
        :: else -> break
        od;
        nready = 0;
        kept = 0;
        ready_kept = 0;
        held = false /* given back while the context is alive */
    };
    shutdown_done = true
}

init {
    byte i;
    atomic {
        if :: stops = true :: stops = false fi;
        i = 0;
        do
        :: i < N -> registered[i] = true; i++
        :: else -> break
        od;
        kept = N;
        held = true;
        run loop();
        run shutdown();
        i = 0;
        do
        :: i < N -> run finisher(i); i++
        :: else -> break
        od
    };
    /* the program ends once the context is gone */
    shutdown_done;
    i = 0;
    do
    :: i < N -> assert(invoked[i] + destroyed[i] == 1); i++
    :: else -> break
    od
}
