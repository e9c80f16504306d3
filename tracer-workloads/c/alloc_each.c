/*
 * alloc_each — leaks exactly one block through each of the nine allocating entry points,
 * and allocates-and-frees one more block through each of them.
 *
 * usage: alloc_each [--no-leak]
 *
 * Each leaked block comes from its own function (leak_malloc, leak_calloc, ...), so the
 * first stack frame above the allocator names the entry point; sizes and totals are in
 * workloads.h. With --no-leak, free_leaks frees the nine blocks before exit and nothing
 * stays allocated. Nothing else in the program allocates. Exit status 0.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>

#include "common.h"
#include "workloads.h"

/* pvalloc and valloc are obsolete and some C libraries mark them deprecated. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static const char PROG[] = "alloc_each";

enum leak {
    L_MALLOC,
    L_CALLOC,
    L_REALLOC,
    L_REALLOCARRAY,
    L_POSIX_MEMALIGN,
    L_ALIGNED_ALLOC,
    L_MEMALIGN,
    L_VALLOC,
    L_PVALLOC,
    L_COUNT,
};
_Static_assert(L_COUNT == ALLOC_EACH_LEAKED_BLOCKS, "one leak per entry point");

/* The leaked blocks stay reachable from here (valgrind: "still reachable"). */
void *volatile leaked[L_COUNT];

static void *check(void *p, const char *what) {
    if (p == NULL)
        fail(PROG, what);
    return p;
}

SITE void leak_malloc(void) {
    leaked[L_MALLOC] = check(malloc(LEAK_MALLOC_SIZE), "malloc failed");
}

SITE void leak_calloc(void) {
    leaked[L_CALLOC] = check(calloc(LEAK_CALLOC_NMEMB, LEAK_CALLOC_ELEM_SIZE), "calloc failed");
}

SITE void *realloc_seed(void) {
    return check(malloc(REALLOC_SEED_SIZE), "malloc (realloc seed) failed");
}

SITE void leak_realloc(void) {
    void *seed = realloc_seed();
    leaked[L_REALLOC] = check(realloc(seed, LEAK_REALLOC_SIZE), "realloc failed");
}

SITE void leak_reallocarray(void) {
    leaked[L_REALLOCARRAY] =
        check(reallocarray(NULL, LEAK_REALLOCARRAY_NMEMB, LEAK_REALLOCARRAY_ELEM_SIZE),
              "reallocarray failed");
}

SITE void leak_posix_memalign(void) {
    void *p = NULL;
    if (posix_memalign(&p, LEAK_POSIX_MEMALIGN_ALIGN, LEAK_POSIX_MEMALIGN_SIZE) != 0)
        fail(PROG, "posix_memalign failed");
    leaked[L_POSIX_MEMALIGN] = p;
}

SITE void leak_aligned_alloc(void) {
    leaked[L_ALIGNED_ALLOC] =
        check(aligned_alloc(LEAK_ALIGNED_ALLOC_ALIGN, LEAK_ALIGNED_ALLOC_SIZE),
              "aligned_alloc failed");
}

SITE void leak_memalign(void) {
    leaked[L_MEMALIGN] =
        check(memalign(LEAK_MEMALIGN_ALIGN, LEAK_MEMALIGN_SIZE), "memalign failed");
}

SITE void leak_valloc(void) {
    leaked[L_VALLOC] = check(valloc(LEAK_VALLOC_SIZE), "valloc failed");
}

SITE void leak_pvalloc(void) {
    leaked[L_PVALLOC] = check(pvalloc(LEAK_PVALLOC_SIZE), "pvalloc failed");
}

/* One block through each entry point, each freed with free(), then free(NULL) once. */
SITE void churn_each(void) {
    void *volatile blocks[9];
    void *p = NULL;

    blocks[0] = check(malloc(CHURN_EACH_MALLOC_SIZE), "malloc failed");
    blocks[1] = check(calloc(CHURN_EACH_CALLOC_NMEMB, CHURN_EACH_CALLOC_ELEM_SIZE),
                      "calloc failed");
    blocks[2] = check(realloc(NULL, CHURN_EACH_REALLOC_SIZE), "realloc failed");
    blocks[3] = check(reallocarray(NULL, CHURN_EACH_REALLOCARRAY_NMEMB,
                                   CHURN_EACH_REALLOCARRAY_ELEM_SIZE),
                      "reallocarray failed");
    if (posix_memalign(&p, CHURN_EACH_POSIX_MEMALIGN_ALIGN, CHURN_EACH_POSIX_MEMALIGN_SIZE) != 0)
        fail(PROG, "posix_memalign failed");
    blocks[4] = p;
    blocks[5] = check(aligned_alloc(CHURN_EACH_ALIGNED_ALLOC_ALIGN, CHURN_EACH_ALIGNED_ALLOC_SIZE),
                      "aligned_alloc failed");
    blocks[6] = check(memalign(CHURN_EACH_MEMALIGN_ALIGN, CHURN_EACH_MEMALIGN_SIZE),
                      "memalign failed");
    blocks[7] = check(valloc(CHURN_EACH_VALLOC_SIZE), "valloc failed");
    blocks[8] = check(pvalloc(CHURN_EACH_PVALLOC_SIZE), "pvalloc failed");

    for (int i = 0; i < 9; i++)
        free(blocks[i]);
    free(NULL);
}

/* --no-leak: releases what the leak_* functions allocated. */
SITE void free_leaks(void) {
    for (int i = 0; i < L_COUNT; i++) {
        free(leaked[i]);
        leaked[i] = NULL;
    }
}

int main(int argc, char **argv) {
    int no_leak = 0;
    if (argc == 2 && strcmp(argv[1], "--no-leak") == 0)
        no_leak = 1;
    else if (argc != 1)
        usage("alloc_each [--no-leak]");

    leak_malloc();
    leak_calloc();
    leak_realloc();
    leak_reallocarray();
    leak_posix_memalign();
    leak_aligned_alloc();
    leak_memalign();
    leak_valloc();
    leak_pvalloc();
    churn_each();
    if (no_leak)
        free_leaks();
    return 0;
}
