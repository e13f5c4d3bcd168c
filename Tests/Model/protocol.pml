/*
 * PmemTrack's write-protect/clean protocol, for the spin model checker.
 *
 * Two blocks, two writers making WRITES stores each, SYNCERS syncers (1 or
 * 2), each running SYNCS syncs one after another. Every statement is an interleaving point, as every atomic
 * operation or system call is in the implementation.
 *
 * What is checked, in every reachable state:
 *   - the invariant "a writable block is DIRTY" (process `invariant`; for
 *     COLLECT, see below);
 *   - when a sync returns without error, every store that completed before
 *     it began has been flushed (the assertion at the end of a sync);
 *   - no deadlock (spin's invalid end states).
 *
 * Abstractions: the implementation locks a run of adjacent DIRTY blocks in
 * ascending order and then handles its TOWRITE sub-runs; here each run is
 * one block, which keeps the same lock order and the same steps per block.
 * A store is atomic with the MMU's write-permission check. A flush may fail
 * (FLUSH_FAILURES), in which case nothing is cleared and TOWRITE is handed
 * back, and that sync reports an error.
 *
 * PINS adds a pinner: it pins a block (under the lock: DIRTY, writable,
 * PINNED), lets a device store to it twice without faulting and whatever
 * the protection, and unpins it. Sync flushes a pinned block but neither
 * write-protects nor cleans it.
 *
 * BATCHED models a flusher whose drain is shared by several runs
 * (FileSyncFlusher's fdatasync on ordinary files, CacheLineFlusher's fence
 * on persistent memory): a sync locks each DIRTY block in ascending order, holds
 * the locks, write-protects and flushes the blocks that are ours, then one
 * drain makes them all durable, and only then are they cleaned and
 * unlocked. The fault path is unchanged.
 *
 * COLLECT models the userfaultfd backend (asynchronous write-protect and
 * PAGEMAP_SCAN). There writable[b] is the kernel's written bit, the inverse
 * of the block's uffd write-protect bit. A store is one kernel step: the
 * kernel resolves a write-protect fault itself, with the store, so the
 * block becomes written and the store lands; no signal, no block lock.
 * A sync begins with a collect, under the mapping's collect lock: the scan
 * visits the blocks in ascending order, one atomic step each, which
 * re-protects a written block and reports it into the syncer's local set;
 * then each reported block is made DIRTY under its block lock; only then is
 * the collect lock released. Tag and walk follow, without the walk's
 * write-protect. "A writable block is DIRTY" does not hold here; instead:
 * a block whose data is newer than media is written, DIRTY, or reported
 * and not yet published (the ghost count `unpublished`). The publish's
 * block lock matters: see mutant I. COLLECT combines with FLUSH_FAILURES,
 * BATCHED and PINS (a pin leaves the written bit alone).
 *
 * WRITEBACK (with COLLECT) models the sync's write-back in the collect:
 * still under the collect lock, if the syncer reads no block DIRTY (one
 * read per block, not atomic together), it flushes and drains the blocks
 * its scan reported instead of publishing them, and they never become
 * DIRTY. A failed flush publishes the block (DIRTY under its lock), and the
 * sync then reports the failure without a walk. If it read a block DIRTY,
 * it publishes everything and walks as without WRITEBACK.
 *
 * Mutants (compile with -DMUTANT_A etc.; F to I with COLLECT):
 *   A  the sync clears DIRTY and flushes before it write-protects;
 *   B  the fault path runs without the block lock;
 *   C  the sync write-protects and cleans blocks dirtied after it began
 *      (DIRTY without TOWRITE) without flushing them;
 *   D  (with PINS) the sync ignores pins;
 *   E  (with BATCHED) the sync cleans its blocks before the shared drain
 *      (seen by a second syncer, which then returns before that drain);
 *   F  the collect releases the collect lock after its scan and before it
 *      publishes: a second sync's scan finds clean the blocks the first
 *      took, and it returns before they are flushed (two syncers);
 *   G  the scan only reads the written bits; the range is write-protected
 *      in a later step, as a soft-dirty tracker must: a store between the
 *      read and the protect is in neither the kernel's set nor DIRTY;
 *   H  the sync cleans its blocks without flushing them;
 *   I  the publish does not take the block lock: it can land between
 *      another sync's flush of the block and its clean, and that clean
 *      erases the DIRTY (or TOWRITE) of a store the flush missed (two
 *      syncers).
 *   J  (with WRITEBACK) the collect releases the collect lock before its
 *      write-back: a second sync's scan finds clean the blocks the first
 *      took, and it returns before they are flushed (two syncers).
 * Each must produce a counterexample. So must C with COLLECT (two syncers:
 * with one, every DIRTY block is tagged).
 */

#define B 2
#ifndef SYNCERS
#define SYNCERS 2
#endif
#ifndef SYNCS
#define SYNCS 1
#endif
#ifndef WRITES
#define WRITES 2
#endif

bit dirty[B];
bit towrite[B];
bit locked[B];
bit writable[B];
bit pinned[B];   /* one pinner, so a bit stands for the pin count */
byte mem[B];     /* version of each block's data in memory: one more per store */
byte media[B];   /* version last flushed: what survives a power loss */
#ifdef COLLECT
bit collecting;         /* the mapping's collect lock */
byte unpublished[B];    /* ghost: how many syncers hold the block collected
                           and not yet DIRTY */
#endif

inline lock(b)   { atomic { locked[b] == 0 -> locked[b] = 1 } }
inline unlock(b) { locked[b] = 0 }

/* The fault path, in the SIGSEGV handler: lock, DIRTY, writable, unlock. */
inline fault(b) {
#ifndef MUTANT_B
    lock(b);
#endif
    dirty[b] = 1;
    writable[b] = 1;
#ifndef MUTANT_B
    unlock(b)
#endif
}

proctype writer() {
    byte n = 0;
#ifdef COLLECT
    bit b;      /* a byte makes gcc warn about pan's undo of the store */
#else
    byte b;
#endif
    do
    :: n < WRITES ->
        if
        :: b = 0
        :: b = 1
        fi;
#ifdef COLLECT
        /* A store: the kernel resolves a write-protect fault itself, under
           the page-table lock, with the store: written, and it lands. */
        atomic { mem[b]++; writable[b] = 1 };
#else
        /* A store: lands if the block is writable, else faults and retries. */
        do
        :: atomic { writable[b] -> mem[b]++ }; break
        :: atomic { !writable[b] -> skip }; fault(b)
        od;
#endif
        n++
    :: else -> break
    od
}

/* Step 1 for one block: TOWRITE := DIRTY, without locks (read, then set). */
inline tag(b) {
    d = dirty[b];
    if
    :: d -> towrite[b] = 1
    :: else -> skip
    fi
}

/* Step 2 for one block, if it is DIRTY when the walk reaches it. */
inline visit(b) {
    if
    :: dirty[b] ->
        lock(b);
        if
        :: towrite[b] && dirty[b] ->
#ifdef MUTANT_A
            towrite[b] = 0;
            dirty[b] = 0;
            media[b] = mem[b];
            writable[b] = 0;
#else
            towrite[b] = 0;
#if defined(PINS) && !defined(MUTANT_D)
            p = pinned[b];                /* stable: pin and unpin take the lock */
#endif
            /* Without PINS (or with mutant D, which ignores pins) p stays 0. */
#ifndef COLLECT
            if
            :: !p -> writable[b] = 0      /* write-protect, unless pinned */
            :: else -> skip
            fi;
#endif
            /* COLLECT: no write-protect here; the collect re-protected. */
            if
#ifdef MUTANT_H
            :: skip;                      /* "flushed" without flushing */
#else
            :: media[b] = mem[b];         /* flush and drain */
#endif
               if
               :: !p -> dirty[b] = 0; towrite[b] = 0
               :: else -> skip            /* pinned: stays DIRTY and writable */
               fi
#ifdef FLUSH_FAILURES
            :: towrite[b] = 1;            /* failure: hand TOWRITE back */
               failed = 1
#endif
            fi
#endif
        :: else ->
#ifdef MUTANT_C
            if
#ifdef COLLECT
            :: dirty[b] -> dirty[b] = 0
#else
            :: dirty[b] -> writable[b] = 0; dirty[b] = 0
#endif
            :: else -> skip
            fi
#else
            skip
#endif
        fi;
        unlock(b)
    :: else -> skip
    fi
}

#ifdef BATCHED
/* Steps 2.1 to 2.4 for one block of the batch: lock it if DIRTY and keep the
   lock; if ours, write-protect it (unless pinned) and flush it. */
inline prepare(b, held, ours, pb) {
    if
    :: dirty[b] ->
        lock(b);
        held = 1;
        if
        :: towrite[b] && dirty[b] ->
            towrite[b] = 0;
#if defined(PINS) && !defined(MUTANT_D)
            pb = pinned[b];
#endif
#ifndef COLLECT
            if
            :: !pb -> writable[b] = 0
            :: else -> skip
            fi;
#endif
#ifdef MUTANT_E
            if
            :: !pb -> dirty[b] = 0
            :: else -> skip
            fi;
#endif
            ours = 1
        :: else -> skip
        fi
    :: else -> skip
    fi
}

/* The shared drain and step 2.5 for one block: durable, then clean. */
inline settle(b, ours, pb) {
    if
    :: ours ->
        media[b] = mem[b];
        if
        :: !pb -> dirty[b] = 0; towrite[b] = 0
        :: else -> skip
        fi
    :: else -> skip
    fi
}

/* A failed drain: nothing is cleared, TOWRITE is handed back. */
inline hand_back(b, ours) {
    if
    :: ours -> towrite[b] = 1; failed = 1
    :: else -> skip
    fi
}
#endif

#ifdef COLLECT
/* One block of the scan (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING), one step:
   if the block is written, write-protect it again and report it into the
   syncer's local set `cb`. */
inline scan(b, cb) {
    atomic {
        if
        :: writable[b] -> writable[b] = 0; cb = 1; unpublished[b]++
        :: else -> cb = 0
        fi
    }
}

/* Mutant G's scan: reports a written block but leaves it written. */
inline scan_read(b, cb) {
    atomic {
        if
        :: writable[b] -> cb = 1; unpublished[b]++
        :: else -> cb = 0
        fi
    }
}

/* Publishes a reported block: DIRTY, under the block lock. The lock keeps
   the publish out of another sync's flush-to-clean window, whose clean
   would erase a DIRTY (and TOWRITE) that its flush does not cover. */
inline publish(b, cb) {
    if
    :: cb ->
#ifdef MUTANT_I
        atomic { dirty[b] = 1; unpublished[b]--; cb = 0 }
#else
        lock(b);
        atomic { dirty[b] = 1; unpublished[b]--; cb = 0 };
        unlock(b)
#endif
    :: else -> skip
    fi
}

#ifdef WRITEBACK
/* The write-back of a reported block, under the collect lock: flush and
   drain it; it is then durable, and no longer unpublished. A failed flush
   publishes it instead, and the sync reports failure. */
inline write_back(b, cb) {
    if
    :: cb ->
        if
#ifdef MUTANT_H
        :: atomic { unpublished[b]--; cb = 0 }        /* "flushed" without flushing */
#else
        :: atomic { media[b] = mem[b]; unpublished[b]--; cb = 0 }
#endif
#ifdef FLUSH_FAILURES
        :: failed = 1; publish(b, cb)
#endif
        fi
    :: else -> skip
    fi
}
#endif

/* Step 0: collect. The collect lock is held from before the scan until
   every reported block is DIRTY (or, WRITEBACK, durable). */
inline collect() {
    atomic { collecting == 0 -> collecting = 1 };
#ifdef MUTANT_G
    scan_read(0, c0);
    scan_read(1, c1);
    writable[0] = 0;    /* then UFFDIO_WRITEPROTECT over the range, */
    writable[1] = 0;    /* page by page */
#else
    scan(0, c0);        /* ascending */
    scan(1, c1);
#endif
#ifdef WRITEBACK
    d0 = dirty[0];
    d1 = dirty[1];
    if
    :: !d0 && !d1 ->
        wrote_back = 1;
#ifdef MUTANT_J
        collecting = 0;
#endif
        write_back(0, c0);
        write_back(1, c1)
    :: else -> wrote_back = 0
    fi;
#endif
#ifdef MUTANT_F
    collecting = 0;
    publish(0, c0);
    publish(1, c1)
#else
    publish(0, c0);     /* WRITEBACK: only what was not written back */
    publish(1, c1);
#ifdef MUTANT_J
    if
    :: !wrote_back -> collecting = 0
    :: else -> skip
    fi
#else
    collecting = 0
#endif
#endif
}
#endif

proctype syncer() {
    byte obligation0, obligation1;
    byte round = 0;
    bit d;
    bit p;
    bit failed;
#ifdef BATCHED
    bit held0, held1, ours0, ours1, p0, p1;
#endif
#ifdef COLLECT
    bit c0, c1;     /* the scan's reports, not yet published */
#endif
#ifdef WRITEBACK
    bit d0, d1, wrote_back;
#endif
    do
    :: round < SYNCS ->
        failed = 0;
        /* Every store that completed before the sync begins. */
        atomic { obligation0 = mem[0]; obligation1 = mem[1] };
#ifdef COLLECT
        collect();
#endif
#ifdef WRITEBACK
        /* A failed write-back reports its failure without a walk. */
        if
        :: wrote_back && failed -> goto done
        :: else -> skip
        fi;
#endif
        tag(0);
        tag(1);
#ifdef BATCHED
        held0 = 0; held1 = 0; ours0 = 0; ours1 = 0; p0 = 0; p1 = 0;
        prepare(0, held0, ours0, p0);   /* ascending block order */
        prepare(1, held1, ours1, p1);
        /* The drain: succeeds, or (FLUSH_FAILURES) fails for every block it
           covered. `skip ->` keeps each choice's first step unconditional. */
        if
        :: skip -> settle(0, ours0, p0); settle(1, ours1, p1)
#ifdef FLUSH_FAILURES
        :: skip -> hand_back(0, ours0); hand_back(1, ours1)
#endif
        fi;
        if
        :: held0 -> unlock(0)
        :: else -> skip
        fi;
        if
        :: held1 -> unlock(1)
        :: else -> skip
        fi;
#else
        visit(0);       /* ascending block order */
        visit(1);
#endif
        /* Step 3: a sync that reports success has flushed every store
           that completed before it began. */
#ifdef WRITEBACK
done:
#endif
        assert(failed || (media[0] >= obligation0 && media[1] >= obligation1));
        round++
    :: else -> break
    od
}

#ifdef PINS
/* Pins a block for a device, which then writes to it without faulting and
   whatever its protection, and unpins it. */
proctype pinner() {
    byte b;
    if
    :: b = 0
    :: b = 1
    fi;
#ifdef COLLECT
    lock(b); dirty[b] = 1; pinned[b] = 1; unlock(b);   /* makeWritable: nothing */
#else
    lock(b); dirty[b] = 1; writable[b] = 1; pinned[b] = 1; unlock(b);
#endif
    mem[b]++;
    mem[b]++;
    lock(b); pinned[b] = 0; unlock(b)
}
#endif

#ifdef COLLECT
/* Checked in every state: data newer than media is in the kernel's written
   set, DIRTY, or in a syncer's collected, not yet published set. */
#define TRACKED(b) (writable[b] || dirty[b] || unpublished[b] > 0 || media[b] >= mem[b])
#define NEWER_IS_TRACKED (TRACKED(0) && TRACKED(1))
active proctype invariant() {
end:
    atomic { !NEWER_IS_TRACKED -> assert(NEWER_IS_TRACKED) }
}
#else
/* Checked in every state: a writable block is DIRTY. */
#define WRITABLE_IS_DIRTY ((!writable[0] || dirty[0]) && (!writable[1] || dirty[1]))
active proctype invariant() {
end:
    atomic { !WRITABLE_IS_DIRTY -> assert(WRITABLE_IS_DIRTY) }
}
#endif

init {
    atomic {
        run writer();
        run writer();
#ifdef PINS
        run pinner();
#endif
        byte s = 0;
        do
        :: s < SYNCERS -> run syncer(); s++
        :: else -> break
        od
    }
}
