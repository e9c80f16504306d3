/*
 * deep.h — the body of deep_fp and deep_nofp: malloc(CHURN_BLOCK_SIZE) + free, ITERATIONS
 * times, DEEP_CHAIN_DEPTH calls below main, for the benchmark of stack walking. build.rs
 * builds the two files alike (-O2) but for frame pointers: deep_fp keeps them, deep_nofp
 * omits them (unwind tables walk it).
 *
 * usage: deep_fp|deep_nofp [ITERATIONS] [--report-ns]
 *
 * With --report-ns it writes the elapsed CLOCK_MONOTONIC nanoseconds of the loop as one
 * decimal line to stdout. Exit status 0.
 */
#include <stdlib.h>
#include <time.h>

#include "common.h"
#include "workloads.h"

static unsigned long iterations = CHURN_DEFAULT_ITERATIONS;
volatile unsigned long deep_sink;

SITE static void deep_loop(void) {
    for (unsigned long i = 0; i < iterations; i++) {
        void *volatile p = malloc(CHURN_BLOCK_SIZE);
        if (p == NULL)
            fail(DEEP_PROG, "malloc failed");
        free(p);
    }
}

/* Each level keeps a value alive across its call and uses a little stack, as real code does. */
#define LEVEL(name, next)                                                                    \
    SITE static unsigned long name(unsigned long k) {                                        \
        volatile unsigned long local[4];                                                     \
        local[0] = k;                                                                        \
        unsigned long r = next(k + 1);                                                       \
        return r + local[0] * 3;                                                             \
    }

SITE static unsigned long deep_1(unsigned long k) {
    deep_loop();
    return k;
}
LEVEL(deep_2, deep_1)
LEVEL(deep_3, deep_2)
LEVEL(deep_4, deep_3)
LEVEL(deep_5, deep_4)
LEVEL(deep_6, deep_5)
LEVEL(deep_7, deep_6)
LEVEL(deep_8, deep_7)
LEVEL(deep_9, deep_8)
LEVEL(deep_10, deep_9)
LEVEL(deep_11, deep_10)
LEVEL(deep_12, deep_11)
_Static_assert(DEEP_CHAIN_DEPTH == 12, "deep_12 .. deep_1 below main");

static unsigned long long now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        fail(DEEP_PROG, "clock_gettime failed");
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int report = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--report-ns") == 0)
            report = 1;
        else if (parse_count(argv[i], &iterations) != 0)
            usage(DEEP_PROG " [ITERATIONS] [--report-ns]");
    }
    unsigned long long start = now_ns();
    deep_sink = deep_12(0);
    unsigned long long ns = now_ns() - start;
    if (report) {
        char buf[24];
        char *p = buf + sizeof buf;
        *--p = '\0';
        *--p = '\n';
        do {
            *--p = (char)('0' + ns % 10);
            ns /= 10;
        } while (ns != 0);
        say(1, p);
    }
    return 0;
}
