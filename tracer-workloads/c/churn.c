/*
 * churn — malloc(CHURN_BLOCK_SIZE) + free, as fast as possible: benchmarks and ring-buffer
 * overflow tests.
 *
 * usage: churn [ITERATIONS [THREADS]] [--wait] [--report-ns]
 *
 * Each of THREADS threads (default CHURN_DEFAULT_THREADS, at most CHURN_MAX_THREADS) runs
 * churn_loop, ITERATIONS times (default CHURN_DEFAULT_ITERATIONS) malloc then free. With one
 * thread the loop runs in the main thread and no thread is created; more threads are made
 * with pthread_create and joined (creating a thread lets glibc allocate its own bookkeeping,
 * so only the single-thread run is exact). With --wait it first blocks reading one byte from
 * stdin (EOF also releases it). Prints nothing and exits with status 0, except that with
 * --report-ns it writes the elapsed CLOCK_MONOTONIC nanoseconds of the work as one decimal
 * line to stdout: of churn_loop alone with one thread; from the first pthread_create to the
 * last pthread_join with several. The stdin wait is not timed. The benchmark divides this by
 * ITERATIONS to get the cost of one malloc + free pair.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "churn";
static const char USAGE[] = "churn [ITERATIONS [THREADS]] [--wait] [--report-ns]";

SITE void churn_loop(unsigned long iterations) {
    for (unsigned long i = 0; i < iterations; i++) {
        /* volatile: the compiler may not drop the pair */
        void *volatile p = malloc(CHURN_BLOCK_SIZE);
        if (p == NULL)
            fail(PROG, "malloc failed");
        free(p);
    }
}

static unsigned long iterations = CHURN_DEFAULT_ITERATIONS;

/* CLOCK_MONOTONIC in nanoseconds (no allocation: clock_gettime is a vDSO call). */
static unsigned long long now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        fail(PROG, "clock_gettime failed");
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* Writes ns as a decimal line to stdout with write(2), not stdio (its buffer is a heap block). */
static void report_ns(unsigned long long ns) {
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

static void *churn_thread(void *arg) {
    (void)arg;
    churn_loop(iterations);
    return NULL;
}

int main(int argc, char **argv) {
    unsigned long threads = CHURN_DEFAULT_THREADS;
    int wait = 0;
    int report = 0;
    int positional = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            wait = 1;
        } else if (strcmp(argv[i], "--report-ns") == 0) {
            report = 1;
        } else if (positional == 0) {
            if (parse_count(argv[i], &iterations) != 0)
                usage(USAGE);
            positional++;
        } else if (positional == 1) {
            if (parse_count(argv[i], &threads) != 0 || threads == 0 ||
                threads > CHURN_MAX_THREADS)
                usage(USAGE);
            positional++;
        } else {
            usage(USAGE);
        }
    }

    if (wait)
        wait_stdin();
    unsigned long long start = now_ns();
    if (threads == 1) {
        churn_loop(iterations);
    } else {
        pthread_t ids[CHURN_MAX_THREADS];
        for (unsigned long t = 0; t < threads; t++) {
            if (pthread_create(&ids[t], NULL, churn_thread, NULL) != 0)
                fail(PROG, "pthread_create failed");
        }
        for (unsigned long t = 0; t < threads; t++) {
            if (pthread_join(ids[t], NULL) != 0)
                fail(PROG, "pthread_join failed");
        }
    }
    unsigned long long end = now_ns();
    if (report)
        report_ns(end - start);
    return 0;
}
