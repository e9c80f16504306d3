/*
 * mimalloc_api — mimalloc's first-class heaps: the mi_heap_* allocation functions. Linked
 * with mimalloc only (Debian's libmimalloc-dev).
 *
 * usage: mimalloc_api
 *
 * main makes one heap with mi_heap_new (mimalloc allocates it inside, from mi_heap_new's own
 * code). Each leak_heap_* function leaks one block from that heap through one entry point
 * (sizes in workloads.h): mi_heap_malloc, mi_heap_zalloc, mi_heap_calloc, mi_heap_mallocn,
 * mi_heap_malloc_aligned, mi_heap_calloc_aligned, and mi_heap_realloc of heap_realloc_seed's
 * block. churn_heap allocates MI_HEAP_CHURN_SIZE bytes through mi_heap_malloc,
 * mi_heap_zalloc, mi_heap_calloc and mi_heap_reallocn(NULL, ...) and frees each with mi_free.
 * Exit status 0.
 */
#include <mimalloc.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "mimalloc_api";

void *volatile mi_kept[7];
mi_heap_t *volatile kept_heap;

static void *check(void *p, const char *what) {
    if (p == NULL)
        fail(PROG, what);
    return p;
}

SITE void leak_heap_malloc(mi_heap_t *h) {
    mi_kept[0] = check(mi_heap_malloc(h, MI_HEAP_MALLOC_SIZE), "mi_heap_malloc");
}

SITE void leak_heap_zalloc(mi_heap_t *h) {
    mi_kept[1] = check(mi_heap_zalloc(h, MI_HEAP_ZALLOC_SIZE), "mi_heap_zalloc");
}

SITE void leak_heap_calloc(mi_heap_t *h) {
    mi_kept[2] = check(mi_heap_calloc(h, MI_HEAP_CALLOC_NMEMB, MI_HEAP_CALLOC_ELEM_SIZE),
                       "mi_heap_calloc");
}

SITE void leak_heap_mallocn(mi_heap_t *h) {
    mi_kept[3] = check(mi_heap_mallocn(h, MI_HEAP_MALLOCN_NMEMB, MI_HEAP_MALLOCN_ELEM_SIZE),
                       "mi_heap_mallocn");
}

SITE void leak_heap_malloc_aligned(mi_heap_t *h) {
    mi_kept[4] = check(mi_heap_malloc_aligned(h, MI_HEAP_ALIGNED_SIZE, MI_HEAP_ALIGN),
                       "mi_heap_malloc_aligned");
}

SITE void leak_heap_calloc_aligned(mi_heap_t *h) {
    mi_kept[5] = check(mi_heap_calloc_aligned(h, MI_HEAP_CALLOC_NMEMB, MI_HEAP_CALLOC_ELEM_SIZE,
                                              MI_HEAP_ALIGN),
                       "mi_heap_calloc_aligned");
}

SITE void *heap_realloc_seed(mi_heap_t *h) {
    return check(mi_heap_malloc(h, MI_HEAP_REALLOC_SEED_SIZE), "mi_heap_malloc");
}

SITE void leak_heap_realloc(mi_heap_t *h) {
    void *seed = heap_realloc_seed(h);
    mi_kept[6] = check(mi_heap_realloc(h, seed, MI_HEAP_REALLOC_SIZE), "mi_heap_realloc");
}

SITE void churn_heap(mi_heap_t *h) {
    mi_free(check(mi_heap_malloc(h, MI_HEAP_CHURN_SIZE), "mi_heap_malloc"));
    mi_free(check(mi_heap_zalloc(h, MI_HEAP_CHURN_SIZE), "mi_heap_zalloc"));
    mi_free(check(mi_heap_calloc(h, 1, MI_HEAP_CHURN_SIZE), "mi_heap_calloc"));
    mi_free(check(mi_heap_reallocn(h, NULL, 1, MI_HEAP_CHURN_SIZE), "mi_heap_reallocn"));
}

int main(void) {
    mi_heap_t *h = check(mi_heap_new(), "mi_heap_new");
    kept_heap = h;
    leak_heap_malloc(h);
    leak_heap_zalloc(h);
    leak_heap_calloc(h);
    leak_heap_mallocn(h);
    leak_heap_malloc_aligned(h);
    leak_heap_calloc_aligned(h);
    leak_heap_realloc(h);
    churn_heap(h);
    return 0;
}
