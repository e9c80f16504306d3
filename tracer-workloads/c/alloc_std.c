/*
 * alloc_std — alloc_each's leaks and churn through the seven entry points every allocator
 * implements (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc), so
 * that it runs unchanged when linked with jemalloc, tcmalloc or mimalloc (which lack
 * reallocarray or pvalloc: those would come from glibc and be freed by the other allocator).
 *
 * usage: alloc_std
 *
 * Leaks one block per entry point from leak_<entry point> (sizes as alloc_each's), the realloc
 * through realloc_seed's block; churn_std allocates and frees one more block through each, then
 * calls free(NULL). Exit status 0.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>

#include "common.h"
#include "workloads.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static const char PROG[] = "alloc_std";

void *volatile std_leaked[ALLOC_STD_LEAKED_BLOCKS];

static void *check(void *p, const char *what) {
    if (p == NULL)
        fail(PROG, what);
    return p;
}

SITE void leak_malloc(void) { std_leaked[0] = check(malloc(LEAK_MALLOC_SIZE), "malloc"); }

SITE void leak_calloc(void) {
    std_leaked[1] = check(calloc(LEAK_CALLOC_NMEMB, LEAK_CALLOC_ELEM_SIZE), "calloc");
}

SITE void *realloc_seed(void) { return check(malloc(REALLOC_SEED_SIZE), "malloc (seed)"); }

SITE void leak_realloc(void) {
    void *seed = realloc_seed();
    std_leaked[2] = check(realloc(seed, LEAK_REALLOC_SIZE), "realloc");
}

SITE void leak_posix_memalign(void) {
    void *p = NULL;
    if (posix_memalign(&p, LEAK_POSIX_MEMALIGN_ALIGN, LEAK_POSIX_MEMALIGN_SIZE) != 0)
        fail(PROG, "posix_memalign");
    std_leaked[3] = p;
}

SITE void leak_aligned_alloc(void) {
    std_leaked[4] = check(aligned_alloc(LEAK_ALIGNED_ALLOC_ALIGN, LEAK_ALIGNED_ALLOC_SIZE),
                          "aligned_alloc");
}

SITE void leak_memalign(void) {
    std_leaked[5] = check(memalign(LEAK_MEMALIGN_ALIGN, LEAK_MEMALIGN_SIZE), "memalign");
}

SITE void leak_valloc(void) { std_leaked[6] = check(valloc(LEAK_VALLOC_SIZE), "valloc"); }

SITE void churn_std(void) {
    void *volatile blocks[7];
    void *p = NULL;
    blocks[0] = check(malloc(CHURN_EACH_MALLOC_SIZE), "malloc");
    blocks[1] = check(calloc(CHURN_EACH_CALLOC_NMEMB, CHURN_EACH_CALLOC_ELEM_SIZE), "calloc");
    blocks[2] = check(realloc(NULL, CHURN_EACH_REALLOC_SIZE), "realloc");
    if (posix_memalign(&p, CHURN_EACH_POSIX_MEMALIGN_ALIGN, CHURN_EACH_POSIX_MEMALIGN_SIZE) != 0)
        fail(PROG, "posix_memalign");
    blocks[3] = p;
    blocks[4] = check(aligned_alloc(CHURN_EACH_ALIGNED_ALLOC_ALIGN, CHURN_EACH_ALIGNED_ALLOC_SIZE),
                      "aligned_alloc");
    blocks[5] = check(memalign(CHURN_EACH_MEMALIGN_ALIGN, CHURN_EACH_MEMALIGN_SIZE), "memalign");
    blocks[6] = check(valloc(CHURN_EACH_VALLOC_SIZE), "valloc");
    for (int i = 0; i < 7; i++)
        free(blocks[i]);
    free(NULL);
}

int main(void) {
    leak_malloc();
    leak_calloc();
    leak_realloc();
    leak_posix_memalign();
    leak_aligned_alloc();
    leak_memalign();
    leak_valloc();
    churn_std();
    return 0;
}
