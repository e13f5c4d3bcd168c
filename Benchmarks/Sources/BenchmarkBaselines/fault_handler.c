// The fault baseline: the least a SIGSEGV + mprotect write tracker can do.
// No index, no lock, no check that the access was a store: one range test
// and one mprotect of the faulting page. PmemTrack's fault cost is reported
// as a ratio to this handler's, on the same pages in the same process.
#include "BenchmarkBaselines.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct sigaction previous;
static _Atomic uintptr_t region_start, region_end;
static _Atomic uint64_t faults;
static uintptr_t page_mask;

/// Hands a fault outside our region to the handler installed before ours,
/// so that PmemTrack's faults (and real crashes) still reach their owner.
static void chain(int sig, siginfo_t *info, void *context) {
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, context);
    } else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) {
        // A synchronous SIGSEGV cannot be ignored: restore the default and
        // return, so that the access repeats and the default action happens.
        signal(sig, SIG_DFL);
    } else {
        previous.sa_handler(sig);
    }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    int saved_errno = errno;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (info->si_code == SEGV_ACCERR && addr >= atomic_load_explicit(&region_start, memory_order_relaxed) &&
        addr < atomic_load_explicit(&region_end, memory_order_relaxed)) {
        if (mprotect((void *)(addr & page_mask), ~page_mask + 1, PROT_READ | PROT_WRITE) == 0) {
            atomic_fetch_add_explicit(&faults, 1, memory_order_relaxed);
            errno = saved_errno;
            return;   // the store is retried and now succeeds
        }
    }
    errno = saved_errno;
    chain(sig, info, context);
}

int pmt_bench_handler_install(void *base, size_t length) {
    page_mask = ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
    atomic_store(&region_start, (uintptr_t)base);
    atomic_store(&region_end, (uintptr_t)base + length);
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_segv;
    // The flags PmemTrack's handler uses, so that signal delivery costs the
    // same and the ratio compares the handlers' work alone.
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_NODEFER;
    sigemptyset(&ours.sa_mask);
    return sigaction(SIGSEGV, &ours, &previous);
}

int pmt_bench_handler_uninstall(void) {
    int rc = sigaction(SIGSEGV, &previous, NULL);
    atomic_store(&region_start, 0);
    atomic_store(&region_end, 0);
    return rc;
}

uint64_t pmt_bench_handler_faults(void) { return atomic_load(&faults); }
