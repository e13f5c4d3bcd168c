// The clock of every measured window.
#include "BenchmarkBaselines.h"

#include <time.h>

uint64_t pmt_bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
