// Internal layout of the dirty index, shared by index.c and lock.c.
#ifndef PMT_INDEX_LAYOUT_H
#define PMT_INDEX_LAYOUT_H

#include "pmt_index.h"
#include <stdatomic.h>

/// log64 of 2^42 blocks rounds up to 7 levels.
#define PMT_MAX_LEVELS 7
/// Futex waiters are counted in buckets hashed by lock word.
#define PMT_WAIT_BUCKETS 64
/// Opening and closing a summary-clear window (struct pmt_index.clear_windows).
#define PMT_WINDOW_OPEN UINT64_C(1)
#define PMT_WINDOW_CLOSE ((UINT64_C(1) << 32) - 1)
#define PMT_WINDOW_CLEARERS(word) ((uint32_t)(word))

struct pmt_index {
    uint64_t nblocks;
    unsigned levels;                           // 1 + number of summary levels
    uint64_t words[PMT_MAX_LEVELS];            // words at each level (level 0 = leaves)
    _Atomic uint64_t *tag[PMT_TAG_COUNT][PMT_MAX_LEVELS];
    /// One lock bit per block, in 32-bit words because futex waits on 32 bits.
    _Atomic uint32_t *locks;
    uint64_t lock_words;
    /// Threads sleeping in futex_wait on a lock word hashed to each bucket.
    /// An unlock issues FUTEX_WAKE only when its bucket is non-zero.
    _Atomic uint32_t waiters[PMT_WAIT_BUCKETS];
    /// Summary-clear windows, in one word so that opening or closing one is
    /// a single read-modify-write: the low 32 bits count the clearers
    /// between clearing a summary bit and deciding whether to restore it,
    /// the high 32 bits advance when a window closes (PMT_WINDOW_CLOSE adds
    /// one there and takes one from the count). A reader that saw the count
    /// non-zero, or the word change, may have skipped a subtree and falls
    /// back to an exact leaf scan. (The generation wraps after 2^32 windows;
    /// a reader would have to sleep through exactly that many to miss one.)
    _Atomic uint64_t clear_windows;
    _Atomic(pmt_clear_hook) clear_hook;
    void *clear_hook_context;
    void *reservation;
    size_t reservation_bytes;
};

#endif
