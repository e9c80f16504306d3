/*
 * chains_nofp — one leaf function leaking through two different call chains, built -O2
 * -fomit-frame-pointer (build.rs builds every *_nofp.c that way), as distributions build.
 *
 * usage: chains_nofp
 *
 * main calls chain_a_outer CHAINS_A_LEAKS times and chain_b_outer CHAINS_B_LEAKS times; both
 * end in leaf_alloc, which leaks malloc(CHAINS_NODE_SIZE). The middle functions keep six values
 * alive across their calls, so the compiler saves every callee-saved register (rbp included,
 * used as a general register: no frame-pointer chain exists) and moves the stack pointer by
 * different amounts. Only unwind tables walk such a stack. Exit status 0.
 */
#include <stdlib.h>

#include "common.h"
#include "workloads.h"

static const char PROG[] = "chains_nofp";

/* Leaked blocks stay reachable from here. */
void *volatile kept[CHAINS_A_LEAKS + CHAINS_B_LEAKS];
volatile unsigned long sink;
/* Read at run time, so the compiler cannot unroll the loops into several call sites. */
volatile unsigned long a_count = CHAINS_A_LEAKS, b_count = CHAINS_B_LEAKS;
static unsigned next_slot;

SITE void *leaf_alloc(unsigned long tag) {
    void *p = malloc(CHAINS_NODE_SIZE);
    if (p == NULL)
        fail(PROG, "malloc failed");
    *(unsigned long *)p = tag;
    kept[next_slot++] = p;
    return p;
}

/* Six values live across the call: rbx, rbp, r12-r15 all saved. */
SITE unsigned long chain_a_mid(unsigned long a, unsigned long b, unsigned long c,
                               unsigned long d, unsigned long e, unsigned long f) {
    unsigned long *p = leaf_alloc(a ^ f);
    return *p + a * b + c * d + e * f + (a ^ e) + (b ^ d) + (c ^ f);
}

SITE unsigned long chain_a_outer(unsigned long k) {
    volatile unsigned long buf[40];
    for (unsigned i = 0; i < 40; i++)
        buf[i] = k * i;
    unsigned long r = chain_a_mid(k, k + 1, k + 2, k + 3, k + 4, k + 5);
    return r ^ buf[7];
}

SITE unsigned long chain_b_mid(unsigned long a, unsigned long b, unsigned long c,
                               unsigned long d, unsigned long e, unsigned long f) {
    volatile unsigned long buf[3];
    buf[0] = a;
    unsigned long *p = leaf_alloc(b ^ e);
    return *p + a * f + b * e + c * d + (a ^ c) + (b ^ f) + (d ^ e) + buf[0];
}

SITE unsigned long chain_b_inner(unsigned long k) {
    unsigned long r = chain_b_mid(k, k * 3, k * 5, k * 7, k * 11, k * 13);
    return r * 17;
}

SITE unsigned long chain_b_outer(unsigned long k) {
    volatile unsigned long buf[100];
    for (unsigned i = 0; i < 100; i++)
        buf[i] = k + i;
    unsigned long r = chain_b_inner(k + buf[9]);
    return r + buf[99];
}

int main(int argc, char **argv) {
    (void)argv;
    if (argc != 1)
        usage("chains_nofp");
    unsigned long acc = 0;
    for (unsigned long i = 0; i < a_count; i++)
        acc += chain_a_outer(i);
    for (unsigned long i = 0; i < b_count; i++)
        acc += chain_b_outer(i);
    sink = acc;
    return 0;
}
