/*
 * jemalloc_api — jemalloc's own API: mallocx with flags, rallocx, sdallocx, dallocx. Linked
 * with jemalloc only (Debian's libjemalloc-dev).
 *
 * usage: jemalloc_api
 *
 * leak_mallocx leaks mallocx(JE_MALLOCX_SIZE, zeroed and 64-byte aligned); leak_rallocx
 * leaks rallocx of rallocx_seed's block to JE_RALLOCX_SIZE; churn_x allocates JE_CHURN_SIZE
 * bytes three times, freeing them with sdallocx, dallocx and free; leak_xallocx makes a
 * JE_XALLOCX_SEED_SIZE block with mallocx, resizes it in place to JE_XALLOCX_SIZE (the same
 * size class: it succeeds), then tries JE_XALLOCX_TOO_BIG in place (it cannot: a failed
 * call), and leaks it. Exit status 0.
 */
#include <jemalloc/jemalloc.h>
#include <stdlib.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "jemalloc_api";

void *volatile je_kept[3];

static void *check(void *p, const char *what) {
    if (p == NULL)
        fail(PROG, what);
    return p;
}

SITE void leak_mallocx(void) {
    je_kept[0] = check(mallocx(JE_MALLOCX_SIZE, MALLOCX_ZERO | MALLOCX_ALIGN(64)), "mallocx");
}

SITE void *rallocx_seed(void) { return check(mallocx(JE_RALLOCX_SEED_SIZE, 0), "mallocx"); }

SITE void leak_rallocx(void) {
    void *seed = rallocx_seed();
    je_kept[1] = check(rallocx(seed, JE_RALLOCX_SIZE, MALLOCX_ZERO), "rallocx");
}

SITE void churn_x(void) {
    void *a = check(mallocx(JE_CHURN_SIZE, 0), "mallocx");
    sdallocx(a, JE_CHURN_SIZE, 0);
    void *b = check(mallocx(JE_CHURN_SIZE, MALLOCX_ZERO), "mallocx");
    dallocx(b, 0);
    void *c = check(malloc(JE_CHURN_SIZE), "malloc");
    free(c);
}

SITE void leak_xallocx(void) {
    void *p = check(mallocx(JE_XALLOCX_SEED_SIZE, 0), "mallocx");
    if (xallocx(p, JE_XALLOCX_SIZE, 0, 0) < JE_XALLOCX_SIZE)
        fail(PROG, "xallocx did not resize in place");
    if (xallocx(p, JE_XALLOCX_TOO_BIG, 0, 0) >= JE_XALLOCX_TOO_BIG)
        fail(PROG, "xallocx grew a small block to a large one in place");
    je_kept[2] = p;
}

int main(void) {
    leak_mallocx();
    leak_xallocx();
    leak_rallocx();
    churn_x();
    return 0;
}
