// Per-block locks. A lock is one bit in the index; a waiter spins briefly,
// then sleeps in futex_wait on the 32-bit word holding the bit.
//
// Lock order: a thread that holds several block locks took them in
// ascending block order, and takes no lock below one it holds. The fault
// handler holds at most one lock at a time. Together this rules out deadlock.
//
// All functions are async-signal-safe.
#ifndef PMT_LOCK_H
#define PMT_LOCK_H

#include "pmt_index.h"

#ifdef __cplusplus
extern "C" {
#endif

void pmt_lock_block(pmt_index *index, uint64_t block);
bool pmt_trylock_block(pmt_index *index, uint64_t block);
void pmt_unlock_block(pmt_index *index, uint64_t block);

/// Locks [first, first+count) in ascending order, waiting for each holder.
void pmt_lock_range(pmt_index *index, uint64_t first, uint64_t count);
void pmt_unlock_range(pmt_index *index, uint64_t first, uint64_t count);

bool pmt_is_locked(const pmt_index *index, uint64_t block);

/// Threads asleep in futex_wait on some block lock of this index now. For
/// tests that must know a thread is blocked before they go on.
unsigned pmt_lock_sleepers(const pmt_index *index);

#ifdef __cplusplus
}
#endif

#endif
