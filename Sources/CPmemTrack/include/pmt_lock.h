// Per-block locks. A lock is one bit in the index; a waiter spins briefly,
// then sleeps in futex_wait on the 32-bit word holding the bit.
//
// Lock order: a thread that holds several block locks took them in
// ascending block order, and takes no lock below one it holds. The fault
// handler holds at most one lock at a time. Together this rules out deadlock.
//
// All functions are async-signal-safe (as pmt_region.h defines it): atomics,
// and futex through syscall(2). The ones that wait can still deadlock in a
// signal handler that interrupted this thread while it held the lock; that is
// why holders block asynchronous signals (pmt_fill_async_signals).
#ifndef PMT_LOCK_H
#define PMT_LOCK_H

#include "pmt_index.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Locks one block, waiting (spin, then futex_wait) while another holds it.
/// Async-signal-safe.
void pmt_lock_block(pmt_index *index, uint64_t block);
/// Takes the lock if it is free; never waits. Async-signal-safe.
bool pmt_trylock_block(pmt_index *index, uint64_t block);
/// Releases it and wakes sleepers on its word (futex_wake). Async-signal-safe.
void pmt_unlock_block(pmt_index *index, uint64_t block);

/// Locks [first, first+count) in ascending order, waiting for each holder;
/// unlocks them. Async-signal-safe.
void pmt_lock_range(pmt_index *index, uint64_t first, uint64_t count);
void pmt_unlock_range(pmt_index *index, uint64_t first, uint64_t count);

/// Whether some thread holds the block's lock now. Async-signal-safe.
bool pmt_is_locked(const pmt_index *index, uint64_t block);

/// Threads asleep in futex_wait on some block lock of this index now. For
/// tests that must know a thread is blocked before they go on.
/// Async-signal-safe.
unsigned pmt_lock_sleepers(const pmt_index *index);

#ifdef __cplusplus
}
#endif

#endif
