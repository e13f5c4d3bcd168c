// How many bytes does the kernel write back for a sync of scattered small
// stores to a mapped ordinary file? It writes back whole page-cache folios,
// and readahead builds large folios on file systems that support them (ext4
// since Linux 6.16, XFS since 5.18). This program measures it without
// PmemTrack, in three cases:
//
//   fresh      stores to pages never read: each write fault reads one page
//   scanned    the whole file read through the mapping first (readahead on)
//   advised    the same scan after madvise(MADV_RANDOM) (no readahead)
//
// For each: the fdatasync time, and the bytes this process dirtied, from
// write_bytes in /proc/self/io (the kernel accounts a whole folio when it
// dirties one).
//
// Then the price of the advice: a cold sequential scan of a file full of
// data, read through the mapping with and without MADV_RANDOM (its pages are
// dropped from the page cache before each, with POSIX_FADV_DONTNEED).
//
//   cc -O2 -o /tmp/folio-writeback Benchmarks/experiments/folio-writeback.c
//   /tmp/folio-writeback /var/tmp        # a directory on the file system to test
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { FILE_BYTES = 256 << 20, PAGE = 4096, STORES = 256, ROUNDS = 5 };

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// write_bytes from /proc/self/io, or -1.
static long long dirtied_bytes(void) {
    FILE *io = fopen("/proc/self/io", "r");
    if (!io) return -1;
    char line[128];
    long long value = -1;
    while (fgets(line, sizeof line, io))
        if (sscanf(line, "write_bytes: %lld", &value) == 1) break;
    fclose(io);
    return value;
}

static void run(const char *directory, const char *name, int scan, int advise) {
    char path[4096];
    snprintf(path, sizeof path, "%s/folio-writeback-XXXXXX", directory);
    int fd = mkstemp(path);
    if (fd < 0 || posix_fallocate(fd, 0, FILE_BYTES) != 0) { perror(path); exit(1); }
    unlink(path);
    volatile uint8_t *map = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) { perror("mmap"); exit(1); }
    if (advise && madvise((void *)map, FILE_BYTES, MADV_RANDOM) != 0) { perror("madvise"); exit(1); }
    if (scan) {
        uint8_t sum = 0;
        for (size_t offset = 0; offset < FILE_BYTES; offset += PAGE) sum += map[offset];
        (void)sum;
    }
    unsigned seed = 1;
    double total = 0;
    long long before = dirtied_bytes();
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < STORES; i++) map[(size_t)(rand_r(&seed) % (FILE_BYTES / PAGE)) * PAGE + 100] = (uint8_t)round;
        double start = seconds();
        if (fdatasync(fd) != 0) { perror("fdatasync"); exit(1); }
        total += seconds() - start;
    }
    long long after = dirtied_bytes();
    printf("%-8s  sync %8.2f ms   dirtied %8.2f MB per sync of %d one-byte stores\n", name,
           total / ROUNDS * 1e3, before < 0 ? -1.0 : (double)(after - before) / ROUNDS / 1e6, STORES);
    munmap((void *)map, FILE_BYTES);
    close(fd);
}

static void cold_scan(const char *directory) {
    char path[4096];
    snprintf(path, sizeof path, "%s/folio-writeback-XXXXXX", directory);
    int fd = mkstemp(path);
    if (fd < 0) { perror(path); exit(1); }
    unlink(path);
    static uint8_t chunk[1 << 20];
    memset(chunk, 0xA5, sizeof chunk);
    for (size_t offset = 0; offset < FILE_BYTES; offset += sizeof chunk)
        if (pwrite(fd, chunk, sizeof chunk, (off_t)offset) != (ssize_t)sizeof chunk) { perror("pwrite"); exit(1); }
    if (fsync(fd) != 0) { perror("fsync"); exit(1); }
    for (int advise = 0; advise <= 1; advise++) {
        // Clean pages only, so all of them go.
        if (posix_fadvise(fd, 0, FILE_BYTES, POSIX_FADV_DONTNEED) != 0) { perror("posix_fadvise"); exit(1); }
        volatile uint8_t *map = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) { perror("mmap"); exit(1); }
        if (advise && madvise((void *)map, FILE_BYTES, MADV_RANDOM) != 0) { perror("madvise"); exit(1); }
        double start = seconds();
        uint8_t sum = 0;
        for (size_t offset = 0; offset < FILE_BYTES; offset += PAGE) sum += map[offset];
        (void)sum;
        printf("cold sequential scan of %d MiB, %-11s %8.0f ms\n", FILE_BYTES >> 20,
               advise ? "MADV_RANDOM" : "readahead", (seconds() - start) * 1e3);
        munmap((void *)map, FILE_BYTES);
    }
    close(fd);
}

int main(int argc, char **argv) {
    const char *directory = argc > 1 ? argv[1] : "/var/tmp";
    run(directory, "fresh", 0, 0);
    run(directory, "scanned", 1, 0);
    run(directory, "advised", 1, 1);
    cold_scan(directory);
    return 0;
}
