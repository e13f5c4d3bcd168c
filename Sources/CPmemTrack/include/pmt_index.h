// The dirty index: a radix tree of 64-bit tag bitmaps, one tree per tag,
// plus one lock bit per block.
//
// Shape (the kernel's XArray marks are the model): level 0 holds one bit per
// block; each word of level L+1 holds one bit per word of level L, set when
// that word is non-zero. The top level is a single word. For N blocks a tag
// uses N/64 + N/64^2 + ... ≈ 1.016·N/64 words, about 1.02 bits per block.
//
// All memory is one anonymous MAP_NORESERVE reservation. Pages are committed
// by the kernel on first store, so an index over a sparse 64 GiB file commits
// only the pages under blocks that were ever tagged.
//
// Every function here is async-signal-safe (as pmt_region.h defines it),
// each says so below. All but create, destroy, resident_bytes and
// after_fork are also lock-free and make no system call: they use only
// atomic loads and read-modify-writes.
#ifndef PMT_INDEX_H
#define PMT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The tags. DIRTY: written since the last successful flush. TOWRITE: taken
/// into a sync's flush set (see Sync/SyncEngine.swift). PINNED: handed to
/// an external writer; sync flushes it but never write-protects or cleans it.
typedef enum {
    PMT_TAG_DIRTY = 0,
    PMT_TAG_TOWRITE = 1,
    PMT_TAG_PINNED = 2,
} pmt_tag;

enum { PMT_TAG_COUNT = 3 };

/// The most blocks an index can hold (2^42: 16 PiB of 4 KiB blocks).
#define PMT_INDEX_MAX_BLOCKS (UINT64_C(1) << 42)

typedef struct pmt_index pmt_index;

/// Reserves an index for `nblocks` blocks, all tags clear, all unlocked.
/// Returns NULL and sets errno (EINVAL for 0 or too many blocks, ENOMEM).
/// Async-signal-safe: sysconf(_SC_PAGESIZE) and one mmap, no malloc. Only
/// Swift code calls it, outside any handler.
pmt_index *pmt_index_create(uint64_t nblocks);

/// Releases the reservation. No other thread may use the index, nor code
/// this call interrupted. Async-signal-safe: munmap.
void pmt_index_destroy(pmt_index *index);

/// Indexes created and not yet destroyed, in the whole process. For leak
/// tests. Async-signal-safe.
uint64_t pmt_index_live_count(void);

/// Async-signal-safe.
uint64_t pmt_index_block_count(const pmt_index *index);

/// Bytes reserved (address space) and bytes the kernel has committed now
/// (resident pages, measured with mincore). For tests and statistics.
/// Async-signal-safe: reserved_bytes reads a field; resident_bytes calls
/// sysconf(_SC_PAGESIZE) and mincore into a buffer on the stack.
size_t pmt_index_reserved_bytes(const pmt_index *index);
size_t pmt_index_resident_bytes(const pmt_index *index);

/// Tag one block, or the blocks [first, first+count). Lock-free: an atomic OR
/// into the leaf, then up the levels until a summary bit is already set.
/// Async-signal-safe (the fault handler calls them).
void pmt_index_set(pmt_index *index, pmt_tag tag, uint64_t block);
void pmt_index_set_range(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count);
/// pmt_index_set_range, returning how many of the blocks did not have the
/// tag before (each counted by the one setter that set it).
/// Async-signal-safe.
uint64_t pmt_index_set_range_counting(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count);

/// Clear a tag over [first, first+count). A summary bit is cleared only when
/// the word below it became empty, and is restored if a racing set refilled it.
/// Async-signal-safe.
void pmt_index_clear_range(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count);

/// A batch of clears with one summary-clear window around all of them:
/// begin, pmt_index_clear_range_in_batch any number of times, end. A clear
/// that empties a word then skips the two read-modify-writes that open and
/// close a window of its own. While the batch is open, searches by other threads
/// fall back to scanning leaves over the spans they search, so keep a batch
/// short: no waiting, no system calls inside. Async-signal-safe.
void pmt_index_clear_batch_begin(pmt_index *index);
void pmt_index_clear_range_in_batch(pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count);
void pmt_index_clear_batch_end(pmt_index *index);

/// Whether `block` has `tag`. Async-signal-safe (the fault handler calls it).
bool pmt_index_test(const pmt_index *index, pmt_tag tag, uint64_t block);

/// For every block in [first, first+count) that has `from` set, set `to`.
/// Visits only tagged subtrees of `from`. Returns how many blocks it found
/// with `from` (whether or not they had `to` already). Async-signal-safe.
uint64_t pmt_index_copy_tag(pmt_index *index, pmt_tag from, pmt_tag to, uint64_t first, uint64_t count);

/// The first block in [from, limit) that has every tag in `tags` set (a bit
/// mask of 1u << pmt_tag), or `limit` if there is none. Clean subtrees of the
/// lowest tag in `tags` are skipped: O(log64 N) per call. Async-signal-safe
/// (the fault handler calls it).
uint64_t pmt_index_find_set(const pmt_index *index, unsigned tags, uint64_t from, uint64_t limit);

/// The last block in [lower, upper) that has every tag in `tags` set, or
/// `upper` if there is none: pmt_index_find_set searching downwards, with the
/// same cost. Async-signal-safe (the fault handler calls it).
uint64_t pmt_index_find_set_last(const pmt_index *index, unsigned tags, uint64_t lower, uint64_t upper);

/// The first block in [from, limit) that lacks some tag in `tags`, or
/// `limit`: the end of the run that starts at `from`. O(run length / 64).
/// Async-signal-safe.
uint64_t pmt_index_find_clear(const pmt_index *index, unsigned tags, uint64_t from, uint64_t limit);

/// Number of blocks in [first, first+count) with `tag` set. O(k·log64 N).
/// Async-signal-safe.
uint64_t pmt_index_count(const pmt_index *index, pmt_tag tag, uint64_t first, uint64_t count);

/// Test-only pause points in the summary-clear pass of a clear:
/// PMT_CLEAR_EMPTIED when a leaf word has just become empty, before any
/// summary bit is touched; PMT_CLEAR_SUMMARY_CLEARED right after a summary
/// bit was cleared, before the word below is re-read.
typedef enum {
    PMT_CLEAR_EMPTIED = 0,
    PMT_CLEAR_SUMMARY_CLEARED = 1,
} pmt_clear_step;

typedef void (*pmt_clear_hook)(void *context, pmt_clear_step step);

/// Sets or removes (NULL) the clear hook. Untested builds pay one branch on
/// a NULL pointer per emptied word. Async-signal-safe.
void pmt_index_set_clear_hook(pmt_index *index, pmt_clear_hook hook, void *context);

/// In the child of fork(), where only the forking thread survives: drops
/// every lock bit and sleeper count, and repairs the summaries if a parent
/// thread was in the middle of clearing one. Async-signal-safe, as a child
/// of a multithreaded fork() needs: atomics, madvise and
/// sysconf(_SC_PAGESIZE), which glibc answers from a value it read at start.
void pmt_index_after_fork(pmt_index *index);

/// Checks the summary invariant of every level for every tag: a summary bit
/// is set if and only if the word below it is non-zero. Returns true when it
/// holds. Only meaningful while no thread is changing the index. O(N/64).
/// Async-signal-safe.
bool pmt_index_check_invariants(const pmt_index *index);

#ifdef __cplusplus
}
#endif

#endif
