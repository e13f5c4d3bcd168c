// The dirty index. See include/pmt_index.h for the shape and the contract.
//
// Memory ordering: every atomic here is sequentially consistent. The proofs
// in the comments below reason about one total order of these operations;
// relaxing any of them needs a new proof.
#include "index_layout.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#define WORD_BITS 64
#define ALL_ONES UINT64_MAX

static inline uint64_t bit(uint64_t i) { return UINT64_C(1) << (i & 63); }

/// Bits [lo, hi) of a word, 0 <= lo < hi <= 64.
static inline uint64_t span_mask(unsigned lo, unsigned hi) {
    uint64_t upper = hi == 64 ? ALL_ONES : (bit(hi) - 1);
    return upper & ~(bit(lo) - 1);
}

static inline uint64_t div_up(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/// Indexes reserved and not yet released, for leak tests. A counter rather
/// than a VMA count: the process's VMAs also change with the threads and
/// allocators of whatever else runs in it.
static _Atomic uint64_t live_indexes;

uint64_t pmt_index_live_count(void) { return atomic_load(&live_indexes); }

pmt_index *pmt_index_create(uint64_t nblocks) {
    if (nblocks == 0 || nblocks > PMT_INDEX_MAX_BLOCKS) {
        errno = EINVAL;
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t words[PMT_MAX_LEVELS] = {0};
    unsigned levels = 0;
    uint64_t n = nblocks;
    do {
        words[levels] = div_up(n, WORD_BITS);
        n = words[levels];
        levels++;
    } while (n > 1);
    uint64_t tag_words = 0;
    for (unsigned l = 0; l < levels; l++) tag_words += words[l];
    uint64_t lock_words = div_up(nblocks, 32);

    size_t header = (sizeof(struct pmt_index) + page - 1) / page * page;
    // The lock words start on a page so that a forked child can drop them
    // wholesale (pmt_index_after_fork).
    size_t tags = (PMT_TAG_COUNT * tag_words * 8 + page - 1) / page * page;
    size_t bytes = header + tags + (lock_words * 4 + page - 1) / page * page;
    // MAP_NORESERVE: address space only. The kernel commits a zero page on the
    // first store to it, which is what makes sparse mappings cheap.
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) return NULL;

    struct pmt_index *index = mem;
    index->nblocks = nblocks;
    index->levels = levels;
    index->reservation = mem;
    index->reservation_bytes = bytes;
    index->lock_words = lock_words;
    char *cursor = (char *)mem + header;
    for (unsigned t = 0; t < PMT_TAG_COUNT; t++) {
        for (unsigned l = 0; l < levels; l++) {
            index->words[l] = words[l];
            index->tag[t][l] = (_Atomic uint64_t *)cursor;
            cursor += words[l] * 8;
        }
    }
    index->locks = (_Atomic uint32_t *)((char *)mem + header + tags);
    atomic_fetch_add(&live_indexes, 1);
    return index;
}

void pmt_index_destroy(pmt_index *index) {
    if (index == NULL) return;
    munmap(index->reservation, index->reservation_bytes);
    atomic_fetch_sub(&live_indexes, 1);
}

uint64_t pmt_index_block_count(const pmt_index *index) { return index->nblocks; }

size_t pmt_index_reserved_bytes(const pmt_index *index) { return index->reservation_bytes; }

size_t pmt_index_resident_bytes(const pmt_index *index) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = index->reservation_bytes / page, resident = 0;
    unsigned char vec[256];
    for (size_t first = 0; first < pages; first += sizeof vec) {
        size_t chunk = pages - first < sizeof vec ? pages - first : sizeof vec;
        if (mincore((char *)index->reservation + first * page, chunk * page, vec) != 0) return 0;
        for (size_t i = 0; i < chunk; i++) resident += vec[i] & 1;
    }
    return resident * page;
}

// MARK: Setting

/// Makes the summary path above word `w` of `level` show it as non-empty.
/// Stops at the first summary bit already set: whoever set it finished this
/// path first, and a clearer that clears it afterwards re-reads the word
/// below and restores it (see clear_summaries), so nothing stays lost.
/// Returns whether it set any summary bit.
static bool set_summaries(pmt_index *index, pmt_tag tag, unsigned level, uint64_t w) {
    bool changed = false;
    for (unsigned l = level + 1; l < index->levels; l++) {
        _Atomic uint64_t *word = &index->tag[tag][l][w / WORD_BITS];
        // A plain load first: in the common case the bit is set and the
        // cache line stays shared instead of bouncing between cores.
        if (atomic_load(word) & bit(w)) return changed;
        atomic_fetch_or(word, bit(w));
        changed = true;
        w /= WORD_BITS;
    }
    return changed;
}

static void clear_summaries(pmt_index *index, pmt_tag tag, unsigned level, uint64_t w);

/// Returns the bits of `mask` that were clear before.
static inline uint64_t set_mask(pmt_index *index, pmt_tag tag, uint64_t w, uint64_t mask) {
    uint64_t old = atomic_fetch_or(&index->tag[tag][0][w], mask);
    // A clear may empty the word between our OR and our summary pass, and
    // clear the summary path before we set it again: the path would then
    // mark an empty word for good (harmless to searches, but the invariant
    // "summary bit iff the word below is non-empty" would not hold once the
    // index is quiet). So a setter that set summary bits and finds its word
    // empty takes the path down again as a clearer would; clear_summaries
    // re-reads each word below and restores the path if it was refilled.
    if (set_summaries(index, tag, 0, w) && atomic_load(&index->tag[tag][0][w]) == 0)
        clear_summaries(index, tag, 0, w);
    return mask & ~old;
}

void pmt_index_set(pmt_index *index, pmt_tag tag, uint64_t block) {
    set_mask(index, tag, block / WORD_BITS, bit(block));
}

uint64_t pmt_index_set_range_counting(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count) {
    uint64_t end = first + count, newly = 0;
    while (first < end) {
        uint64_t w = first / WORD_BITS;
        uint64_t stop = (w + 1) * WORD_BITS < end ? (w + 1) * WORD_BITS : end;
        newly += (uint64_t)__builtin_popcountll(set_mask(index, tag, w, span_mask(first % 64, (unsigned)(stop - w * WORD_BITS))));
        first = stop;
    }
    return newly;
}

void pmt_index_set_range(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count) {
    (void)pmt_index_set_range_counting(index, tag, first, count);
}

bool pmt_index_test(const pmt_index *index, pmt_tag tag, uint64_t block) {
    return (atomic_load(&index->tag[tag][0][block / WORD_BITS]) & bit(block)) != 0;
}

// MARK: Clearing

/// Word `w` of `level` became empty: clear its summary bit, and go on up
/// while words become empty. After clearing a summary bit, re-read the word
/// below: a setter that refilled it may have seen the summary bit still set
/// and stopped, so the clearer restores the path for it. The whole pass is
/// a clear window for readers (see pmt_index_find_set).
static inline void pause_at(pmt_index *index, pmt_clear_step step) {
    pmt_clear_hook hook = atomic_load_explicit(&index->clear_hook, memory_order_acquire);
    if (__builtin_expect(hook != NULL, 0)) hook(index->clear_hook_context, step);
}

void pmt_index_set_clear_hook(pmt_index *index, pmt_clear_hook hook, void *context) {
    index->clear_hook_context = context;
    atomic_store_explicit(&index->clear_hook, hook, memory_order_release);
}

/// The summary pass of clear_summaries, inside a window the caller opened.
static void clear_summary_path(pmt_index *index, pmt_tag tag, unsigned level, uint64_t w) {
    pause_at(index, PMT_CLEAR_EMPTIED);
    for (unsigned l = level + 1; l < index->levels; l++) {
        _Atomic uint64_t *word = &index->tag[tag][l][w / WORD_BITS];
        uint64_t old = atomic_fetch_and(word, ~bit(w));
        pause_at(index, PMT_CLEAR_SUMMARY_CLEARED);
        if (atomic_load(&index->tag[tag][l - 1][w]) != 0) {
            set_summaries(index, tag, l - 1, w);
            break;
        }
        if ((old & ~bit(w)) != 0) break;   // this word still has other children
        w /= WORD_BITS;
    }
}

static void clear_summaries(pmt_index *index, pmt_tag tag, unsigned level, uint64_t w) {
    atomic_fetch_add(&index->clear_windows, PMT_WINDOW_OPEN);
    clear_summary_path(index, tag, level, w);
    atomic_fetch_add(&index->clear_windows, PMT_WINDOW_CLOSE);
}

/// Clears the leaves of [first, first+count); for each word that became
/// empty, `emptied` takes the summary path up.
static inline void clear_leaves(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count,
                                void (*emptied)(pmt_index *, pmt_tag, unsigned, uint64_t)) {
    uint64_t end = first + count;
    while (first < end) {
        uint64_t w = first / WORD_BITS;
        uint64_t stop = (w + 1) * WORD_BITS < end ? (w + 1) * WORD_BITS : end;
        uint64_t mask = span_mask(first % 64, (unsigned)(stop - w * WORD_BITS));
        // Already clear: the load is the clear's moment, and the word's
        // cache line is not taken exclusive for nothing (a sync clears
        // TOWRITE again after its drain, usually a no-op).
        if ((atomic_load(&index->tag[tag][0][w]) & mask) == 0) {
            first = stop;
            continue;
        }
        uint64_t old = atomic_fetch_and(&index->tag[tag][0][w], ~mask);
        // Only the clear that empties a word touches the levels above.
        if ((old & mask) != 0 && (old & ~mask) == 0) emptied(index, tag, 0, w);
        first = stop;
    }
}

void pmt_index_clear_range(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count) {
    clear_leaves(index, tag, first, count, clear_summaries);
}

void pmt_index_clear_batch_begin(pmt_index *index) {
    atomic_fetch_add(&index->clear_windows, PMT_WINDOW_OPEN);
}

void pmt_index_clear_range_in_batch(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count) {
    clear_leaves(index, tag, first, count, clear_summary_path);
}

void pmt_index_clear_batch_end(pmt_index *index) {
    atomic_fetch_add(&index->clear_windows, PMT_WINDOW_CLOSE);
}

// MARK: Finding

/// The first word index >= i at `level` that its summary (level+1) marks
/// non-empty, or UINT64_MAX. Climbs only while summary words are empty.
static uint64_t next_marked(const pmt_index *index, pmt_tag tag, unsigned level, uint64_t i) {
    if (i >= index->words[level]) return UINT64_MAX;
    if (level + 1 == index->levels) return i;   // the top word has no summary
    for (;;) {
        uint64_t s = i / WORD_BITS;
        uint64_t bits = atomic_load(&index->tag[tag][level + 1][s]) & ~(bit(i) - 1);
        if (bits) return s * WORD_BITS + (uint64_t)__builtin_ctzll(bits);
        // Nothing left in summary word s: find the next marked one above it.
        uint64_t next = next_marked(index, tag, level + 1, s + 1);
        if (next == UINT64_MAX) return UINT64_MAX;
        i = next * WORD_BITS;
    }
}

static inline uint64_t leaf_bits(const pmt_index *index, unsigned tags, uint64_t w) {
    uint64_t bits = ALL_ONES;
    for (unsigned t = 0; t < PMT_TAG_COUNT; t++)
        if (tags & (1u << t)) bits &= atomic_load(&index->tag[t][0][w]);
    return bits;
}

static uint64_t scan_leaves(const pmt_index *index, unsigned tags, uint64_t from, uint64_t limit) {
    for (uint64_t pos = from; pos < limit;) {
        uint64_t w = pos / WORD_BITS;
        uint64_t bits = leaf_bits(index, tags, w) & ~(bit(pos) - 1);
        if (bits) {
            uint64_t found = w * WORD_BITS + (uint64_t)__builtin_ctzll(bits);
            return found < limit ? found : limit;
        }
        pos = (w + 1) * WORD_BITS;
    }
    return limit;
}

static uint64_t tree_find(const pmt_index *index, unsigned tags, uint64_t from, uint64_t limit) {
    // Skip clean subtrees of the lowest tag asked for.
    pmt_tag guide = (pmt_tag)__builtin_ctz(tags);
    uint64_t pos = from;
    while (pos < limit) {
        uint64_t w = next_marked(index, guide, 0, pos / WORD_BITS);
        if (w == UINT64_MAX || w * WORD_BITS >= limit) return limit;
        if (w * WORD_BITS > pos) pos = w * WORD_BITS;
        uint64_t bits = leaf_bits(index, tags, w) & ~(bit(pos) - 1);
        if (bits) {
            uint64_t found = w * WORD_BITS + (uint64_t)__builtin_ctzll(bits);
            return found < limit ? found : limit;
        }
        pos = (w + 1) * WORD_BITS;   // a stale summary bit, or other tags clear
    }
    return limit;
}

/// Whether a clear window was open at `before` (a load of clear_windows),
/// is open now, or closed in between: then a tree search since `before` may
/// have skipped a subtree. Equal words with no clearer mean neither.
static inline bool clear_window_overlapped(const pmt_index *index, uint64_t before) {
    return PMT_WINDOW_CLEARERS(before) != 0 || atomic_load(&index->clear_windows) != before;
}

uint64_t pmt_index_find_set(const pmt_index *index, unsigned tags, uint64_t from, uint64_t limit) {
    if (limit > index->nblocks) limit = index->nblocks;
    if (from >= limit || (tags & ((1u << PMT_TAG_COUNT) - 1)) == 0) return limit;
    // A summary bit is missing only inside a clear window. If a window was
    // open, or one closed, while we searched, the search may have skipped a
    // subtree between `from` and its answer; leaves are never missing bits,
    // so scanning them over that span is exact.
    uint64_t window = atomic_load(&index->clear_windows);
    uint64_t found = tree_find(index, tags, from, limit);
    if (clear_window_overlapped(index, window)) found = scan_leaves(index, tags, from, found);
    return found;
}

/// The last word index <= i at `level` that its summary marks non-empty,
/// or UINT64_MAX: next_marked's mirror, for searches downwards.
static uint64_t prev_marked(const pmt_index *index, pmt_tag tag, unsigned level, uint64_t i) {
    if (level + 1 == index->levels) return i;
    for (;;) {
        uint64_t s = i / WORD_BITS;
        uint64_t bits = atomic_load(&index->tag[tag][level + 1][s]) & span_mask(0, (unsigned)(i % WORD_BITS) + 1);
        if (bits) return s * WORD_BITS + 63 - (uint64_t)__builtin_clzll(bits);
        if (s == 0) return UINT64_MAX;
        uint64_t prev = prev_marked(index, tag, level + 1, s - 1);
        if (prev == UINT64_MAX) return UINT64_MAX;
        i = prev * WORD_BITS + (WORD_BITS - 1);
    }
}

/// The highest set bit of `bits` restricted to positions [lo, hi) of word
/// `w`, as a block number, or UINT64_MAX.
static inline uint64_t last_in_word(uint64_t w, uint64_t bits, unsigned lo, unsigned hi) {
    bits &= span_mask(lo, hi);
    return bits ? w * WORD_BITS + 63 - (uint64_t)__builtin_clzll(bits) : UINT64_MAX;
}

static uint64_t scan_leaves_last(const pmt_index *index, unsigned tags, uint64_t lower, uint64_t upper) {
    for (uint64_t end = upper; end > lower;) {
        uint64_t w = (end - 1) / WORD_BITS;
        uint64_t base = w * WORD_BITS;
        unsigned lo = lower > base ? (unsigned)(lower - base) : 0;
        uint64_t found = last_in_word(w, leaf_bits(index, tags, w), lo, (unsigned)(end - base));
        if (found != UINT64_MAX) return found;
        end = base;
    }
    return upper;
}

static uint64_t tree_find_last(const pmt_index *index, unsigned tags, uint64_t lower, uint64_t upper) {
    pmt_tag guide = (pmt_tag)__builtin_ctz(tags);
    for (uint64_t end = upper; end > lower;) {
        uint64_t w = prev_marked(index, guide, 0, (end - 1) / WORD_BITS);
        if (w == UINT64_MAX || (w + 1) * WORD_BITS <= lower) return upper;
        uint64_t base = w * WORD_BITS;
        if (end > base + WORD_BITS) end = base + WORD_BITS;
        unsigned lo = lower > base ? (unsigned)(lower - base) : 0;
        uint64_t found = last_in_word(w, leaf_bits(index, tags, w), lo, (unsigned)(end - base));
        if (found != UINT64_MAX) return found;
        end = base;   // a stale summary bit, or other tags clear
    }
    return upper;
}

uint64_t pmt_index_find_set_last(const pmt_index *index, unsigned tags, uint64_t lower, uint64_t upper) {
    if (upper > index->nblocks) upper = index->nblocks;
    if (lower >= upper || (tags & ((1u << PMT_TAG_COUNT) - 1)) == 0) return upper;
    // The same clear-window argument as pmt_index_find_set, downwards: the
    // tree may have skipped a subtree between the answer and `upper`.
    uint64_t window = atomic_load(&index->clear_windows);
    uint64_t found = tree_find_last(index, tags, lower, upper);
    if (clear_window_overlapped(index, window)) {
        uint64_t rescanned = scan_leaves_last(index, tags, found == upper ? lower : found + 1, upper);
        if (rescanned != upper) found = rescanned;
    }
    return found;
}

uint64_t pmt_index_find_clear(const pmt_index *index, unsigned tags, uint64_t from, uint64_t limit) {
    if (limit > index->nblocks) limit = index->nblocks;
    for (uint64_t pos = from; pos < limit;) {
        uint64_t w = pos / WORD_BITS;
        uint64_t gaps = ~leaf_bits(index, tags, w) & ~(bit(pos) - 1);
        if (gaps) {
            uint64_t found = w * WORD_BITS + (uint64_t)__builtin_ctzll(gaps);
            return found < limit ? found : limit;
        }
        pos = (w + 1) * WORD_BITS;
    }
    return limit;
}

// MARK: Whole-range operations

/// Calls `body` with each non-empty leaf word of `tag` in [first, first+count),
/// masked to the range. Visits only tagged subtrees.
#define FOR_EACH_TAGGED_WORD(index, tg, first, count, w, bits, body)                  \
    do {                                                                               \
        uint64_t end_ = (first) + (count), pos_ = (first);                             \
        while ((pos_ = pmt_index_find_set((index), 1u << (tg), pos_, end_)) < end_) { \
            uint64_t w = pos_ / WORD_BITS;                                             \
            uint64_t stop_ = (w + 1) * WORD_BITS < end_ ? (w + 1) * WORD_BITS : end_;  \
            uint64_t bits = atomic_load(&(index)->tag[tg][0][w]) &                    \
                            span_mask(pos_ % 64, (unsigned)(stop_ - w * WORD_BITS));   \
            body;                                                                      \
            pos_ = stop_;                                                              \
        }                                                                              \
    } while (0)

uint64_t pmt_index_copy_tag(pmt_index *index, pmt_tag from, pmt_tag to, uint64_t first, uint64_t count) {
    uint64_t copied = 0;
    FOR_EACH_TAGGED_WORD(index, from, first, count, w, bits, {
        if (bits) {
            set_mask(index, to, w, bits);
            copied += (uint64_t)__builtin_popcountll(bits);
        }
    });
    return copied;
}

uint64_t pmt_index_count(const pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count) {
    uint64_t total = 0;
    FOR_EACH_TAGGED_WORD(index, tag, first, count, w, bits, {
        total += (uint64_t)__builtin_popcountll(bits);
    });
    return total;
}

// MARK: fork

/// Rebuilds every summary level from the leaves. Single-threaded use only.
static void rebuild_summaries(pmt_index *index) {
    for (unsigned t = 0; t < PMT_TAG_COUNT; t++) {
        for (unsigned l = 1; l < index->levels; l++) {
            for (uint64_t w = 0; w < index->words[l]; w++) atomic_store(&index->tag[t][l][w], 0);
            for (uint64_t w = 0; w < index->words[l - 1]; w++)
                if (atomic_load(&index->tag[t][l - 1][w]) != 0)
                    atomic_fetch_or(&index->tag[t][l][w / WORD_BITS], bit(w));
        }
    }
}

void pmt_index_after_fork(pmt_index *index) {
    // Lock bits and sleeper counts belonged to threads of the parent that
    // do not exist here. MADV_DONTNEED gives private anonymous pages back
    // as zeros, without touching (and committing) them.
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t lock_bytes = (index->lock_words * 4 + page - 1) / page * page;
    madvise((void *)index->locks, lock_bytes, MADV_DONTNEED);
    for (unsigned i = 0; i < PMT_WAIT_BUCKETS; i++) atomic_store(&index->waiters[i], 0);
    // A parent thread may have been inside a summary-clear window, with a
    // summary bit missing that it would have restored. Nobody will here.
    if (PMT_WINDOW_CLEARERS(atomic_load(&index->clear_windows)) != 0) {
        rebuild_summaries(index);
        atomic_store(&index->clear_windows, 0);
    }
}

bool pmt_index_check_invariants(const pmt_index *index) {
    for (unsigned t = 0; t < PMT_TAG_COUNT; t++) {
        // No leaf bit beyond the last block.
        uint64_t last = index->words[0] - 1;
        unsigned used = (unsigned)(index->nblocks - last * WORD_BITS);
        if (atomic_load(&index->tag[t][0][last]) & ~span_mask(0, used)) return false;
        for (unsigned l = 0; l + 1 < index->levels; l++) {
            for (uint64_t w = 0; w < index->words[l]; w++) {
                bool nonempty = atomic_load(&index->tag[t][l][w]) != 0;
                bool marked = (atomic_load(&index->tag[t][l + 1][w / WORD_BITS]) & bit(w)) != 0;
                if (nonempty != marked) return false;
            }
            for (uint64_t w = index->words[l]; w < index->words[l + 1] * WORD_BITS; w++)
                if (atomic_load(&index->tag[t][l + 1][w / WORD_BITS]) & bit(w)) return false;
        }
    }
    return true;
}
