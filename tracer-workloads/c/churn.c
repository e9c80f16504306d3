/*
 * churn — malloc(CHURN_BLOCK_SIZE) + free, as fast as possible: benchmarks and ring-buffer
 * overflow tests.
 *
 * usage: churn [ITERATIONS [THREADS]] [--wait]
 *
 * Each of THREADS threads (default CHURN_DEFAULT_THREADS, at most CHURN_MAX_THREADS) runs
 * churn_loop, ITERATIONS times (default CHURN_DEFAULT_ITERATIONS) malloc then free. With one
 * thread the loop runs in the main thread and no thread is created; more threads are made
 * with pthread_create and joined (creating a thread lets glibc allocate its own bookkeeping,
 * so only the single-thread run is exact). With --wait it first blocks reading one byte from
 * stdin (EOF also releases it). Prints nothing; exit status 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "churn";
static const char USAGE[] = "churn [ITERATIONS [THREADS]] [--wait]";

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

static void *churn_thread(void *arg) {
    (void)arg;
    churn_loop(iterations);
    return NULL;
}

int main(int argc, char **argv) {
    unsigned long threads = CHURN_DEFAULT_THREADS;
    int wait = 0;
    int positional = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            wait = 1;
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
    if (threads == 1) {
        churn_loop(iterations);
        return 0;
    }

    pthread_t ids[CHURN_MAX_THREADS];
    for (unsigned long t = 0; t < threads; t++) {
        if (pthread_create(&ids[t], NULL, churn_thread, NULL) != 0)
            fail(PROG, "pthread_create failed");
    }
    for (unsigned long t = 0; t < threads; t++) {
        if (pthread_join(ids[t], NULL) != 0)
            fail(PROG, "pthread_join failed");
    }
    return 0;
}
