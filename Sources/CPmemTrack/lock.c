// Block locks over the index's lock words. See include/pmt_lock.h.
#include "index_layout.h"
#include "pmt_lock.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Spins before sleeping. A fault or a small run's flush holds a lock for a
/// few microseconds, so a short spin usually wins; a long msync does not.
#define SPIN_LIMIT 128

static inline uint32_t lock_bit(uint64_t block) { return UINT32_C(1) << (block & 31); }

static inline unsigned bucket_of(uint64_t word) { return (unsigned)(word % PMT_WAIT_BUCKETS); }

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Waits until none of `mask` is set in lock word `w`.
///
/// Lost wake-ups are impossible: the waiter raises its bucket count before
/// it re-reads the word, and an unlocker clears the bit before it reads the
/// bucket count (all sequentially consistent). Either the unlocker sees the
/// waiter and wakes the word, or the waiter sees the cleared bit, or
/// futex_wait sees a changed word and returns at once.
static void wait_clear(pmt_index *index, uint64_t w, uint32_t mask) {
    _Atomic uint32_t *word = &index->locks[w];
    for (int i = 0; i < SPIN_LIMIT; i++) {
        if ((atomic_load(word) & mask) == 0) return;
        cpu_relax();
    }
    _Atomic uint32_t *waiters = &index->waiters[bucket_of(w)];
    atomic_fetch_add(waiters, 1);
    for (;;) {
        uint32_t seen = atomic_load(word);
        if ((seen & mask) == 0) break;
        syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
    }
    atomic_fetch_sub(waiters, 1);
}

static void release(pmt_index *index, uint64_t w, uint32_t mask) {
    atomic_fetch_and(&index->locks[w], ~mask);
    // Several blocks share a word, so wake every sleeper on it: each
    // re-checks its own bit.
    if (atomic_load(&index->waiters[bucket_of(w)]) != 0)
        syscall(SYS_futex, (uint32_t *)&index->locks[w], FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

bool pmt_trylock_block(pmt_index *index, uint64_t block) {
    return (atomic_fetch_or(&index->locks[block / 32], lock_bit(block)) & lock_bit(block)) == 0;
}

void pmt_lock_block(pmt_index *index, uint64_t block) {
    while (!pmt_trylock_block(index, block)) wait_clear(index, block / 32, lock_bit(block));
}

void pmt_unlock_block(pmt_index *index, uint64_t block) {
    release(index, block / 32, lock_bit(block));
}

bool pmt_is_locked(const pmt_index *index, uint64_t block) {
    return (atomic_load(&index->locks[block / 32]) & lock_bit(block)) != 0;
}

unsigned pmt_lock_sleepers(const pmt_index *index) {
    unsigned total = 0;
    for (unsigned i = 0; i < PMT_WAIT_BUCKETS; i++) total += atomic_load(&index->waiters[i]);
    return total;
}

static inline uint32_t word_span(uint64_t pos, uint64_t end) {
    unsigned lo = (unsigned)(pos & 31);
    uint64_t room = 32 - lo;
    unsigned n = (unsigned)(end - pos < room ? end - pos : room);
    return (n == 32 ? UINT32_MAX : ((UINT32_C(1) << n) - 1)) << lo;
}

void pmt_lock_range(pmt_index *index, uint64_t first, uint64_t count) {
    uint64_t end = first + count;
    for (uint64_t pos = first; pos < end;) {
        uint64_t w = pos / 32;
        uint32_t mask = word_span(pos, end);
        uint32_t seen = atomic_load(&index->locks[w]);
        // Fast path: the whole span of this word is free; take it at once.
        // Taking a free prefix in one step keeps the ascending order.
        if ((seen & mask) == 0 &&
            atomic_compare_exchange_strong(&index->locks[w], &seen, seen | mask)) {
            pos = (w + 1) * 32;
            continue;
        }
        // Slow path: one bit at a time, in ascending order.
        pmt_lock_block(index, pos);
        pos++;
    }
}

void pmt_unlock_range(pmt_index *index, uint64_t first, uint64_t count) {
    uint64_t end = first + count;
    for (uint64_t pos = first; pos < end;) {
        uint64_t w = pos / 32;
        release(index, w, word_span(pos, end));
        pos = (w + 1) * 32;
    }
}
